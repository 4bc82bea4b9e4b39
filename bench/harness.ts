import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { sessionSigningKey } from '../src/auth/session-signing-key.js';
import { dataSourceOptions } from '../src/database/data-source-options.js';
import { runMigrationsLocked } from '../src/database/run-migrations.js';
import { startDevIdentityProvider, type DevIdentityProvider } from '../dev-idp/index.js';
import { ANY_SEED_PREFIX, SEED_PREFIX, seedUsers } from './seed.js';

/** What the benchmark and the soak share: a migrated database, seeded users, tokens, child servers. */

export const DEFAULT_DATABASE_URL =
  process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/users_api_bench';

export async function ensureDatabase(url: string): Promise<void> {
  const admin = new URL(url);
  const name = admin.pathname.slice(1);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (!rowCount) await client.query(`CREATE DATABASE "${name}"`);
  await client.end();
  const dataSource = new DataSource(
    dataSourceOptions({ url, poolMax: 2, statementTimeoutMs: 0, migrationsRun: false }),
  );
  await dataSource.initialize();
  await runMigrationsLocked(dataSource);
  await dataSource.destroy();
}

/** Seeds up to `users`; returns what this call seeded and how long it took (null when all were there). */
export async function ensureSeeded(
  client: pg.Client,
  users: number,
): Promise<{ from: number; seconds: number } | null> {
  // Every batch is one statement, so an interrupted seed leaves users 1…n of this seed version: a rerun
  // with the same or a larger --users goes on from n + 1 (resumable), anything else is reseeded.
  const {
    rows: [{ n, last }],
  } = await client.query<{ n: number; last: number | null }>(
    `SELECT count(*)::int AS n, max(substr(zitadel_id, $2)::int) AS last FROM users WHERE zitadel_id LIKE $1`,
    [`${SEED_PREFIX}%`, SEED_PREFIX.length + 1],
  );
  if (n === users) {
    console.log(`${users} seeded users already present`);
    return null;
  }
  const resumable = n > 0 && n < users && last === n;
  let deleted = 0;
  if (!resumable) {
    ({ rowCount: deleted } = (await client.query(`DELETE FROM users WHERE zitadel_id LIKE $1`, [
      `${ANY_SEED_PREFIX}%`,
    ])) as { rowCount: number });
  } else {
    console.log(`${n} of ${users} seeded users present: seeding the rest`);
  }
  const started = Date.now();
  const from = resumable ? n + 1 : 1;
  await seedUsers(client, users, from);
  // The deleted rows leave the table twice its size with its first half empty. A LIMITed sequential
  // scan (a search count) that joins a concurrent one mid-table (synchronize_seqscans) then reads through
  // hundreds of MB of empty pages: search p97.5 at 1,000,000 users was 250 ms, 48 ms once compacted.
  if (deleted) await client.query('VACUUM (FULL, ANALYZE) users');
  const seconds = Math.round((Date.now() - started) / 100) / 10;
  console.log(`seeded users ${from}…${users} in ${seconds} s`);
  return { from, seconds };
}

/** A session row and its token for a seeded user, signed with the key both servers verify against. */
export async function tokenFor(client: pg.Client, userId: string, signingKey: string): Promise<string> {
  const expiresAt = new Date(Date.now() + 3_600_000);
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO sessions (user_id, expires_at, device_info) VALUES ($1, $2, 'bench') RETURNING id`,
    [userId, expiresAt],
  );
  const key = sessionSigningKey(signingKey);
  return jwt.sign(
    { sub: userId, sid: rows[0].id, token_use: 'session', iss: 'users-api', aud: 'users-api' },
    key.signingKey,
    { algorithm: key.algorithm, keyid: key.keyId, expiresIn: 3600 },
  );
}

/** Node's flags in `npm run start:prod` (and the Dockerfile): the benchmark runs what is deployed. */
async function productionNodeFlags(): Promise<string[]> {
  const { scripts } = JSON.parse(await readFile('package.json', 'utf8')) as {
    scripts: Record<string, string>;
  };
  const command = /^node((?: --[\w-]+(?:=\S+)?)*) dist\/src\/main\.js$/.exec(scripts['start:prod'] ?? '');
  if (!command) throw new Error('package.json start:prod is not `node [--flags] dist/src/main.js`');
  return command[1].split(' ').filter(Boolean);
}

export function startNode(
  script: string,
  env: Record<string, string>,
  nodeFlags: string[] = [],
): ChildProcess {
  const child = spawn(process.execPath, [...nodeFlags, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

export async function waitFor(url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

/** Peak resident set size of a process while `run` runs, sampled from /proc every 100 ms. */
export async function peakRss<T>(pid: number, run: () => Promise<T>): Promise<{ result: T; peakMb: number }> {
  let peak = 0;
  const sample = async () => {
    const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    peak = Math.max(peak, kb);
  };
  const timer = setInterval(() => void sample(), 100);
  try {
    const result = await run();
    await sample();
    return { result, peakMb: Math.round(peak / 1024) };
  } finally {
    clearInterval(timer);
  }
}

/**
 * CPU time (user + system) a process has used so far, in milliseconds, from /proc/<pid>/stat (clock
 * ticks of 10 ms). Divided by the requests served, it is the cost of one request in that process: a figure
 * that, unlike requests per second, hardly moves when other work shares the machine.
 */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Fields after the command name (which may hold spaces) start at field 3: utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
}

/** A port nothing listens on right now: the kernel's pick for port 0, released again. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** SESSION_SIGNING_KEY as deployments are advised to set it: a 256-bit HS256 secret (see README). */
export function newSigningKey(): string {
  return randomBytes(32).toString('base64url');
}

/** An active seeded user holding exactly this role. */
export async function pickSeededUser(client: pg.Client, role: 'user' | 'admin'): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT id FROM users WHERE zitadel_id LIKE $1 AND status = 'active' AND roles = ARRAY[$2] LIMIT 1`,
    [`${SEED_PREFIX}%`, role],
  );
  return rows[0].id;
}

/** Current resident set size of a process, in MB (Linux). */
export async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024);
}

/**
 * These scripts measure throughput, not refusals: every limit lifted out of reach. The windows are one
 * second because @nestjs/throttler's in-memory store keeps one timestamp per hit inside the window and
 * filters them on each request: under a real limit (say 300 a minute) that log never exceeds the limit,
 * but under a lifted limit with a minute's window it would grow to a minute of benchmark traffic (about
 * 100,000 entries) and measure the store's worst case instead of the service. The seeded users are not
 * in the identity provider, so reconciliation stays off (it would, rightly, mark them deleted).
 */
const UNLIMITED = {
  RATE_LIMIT_LOGIN: '1000000000/1s',
  RATE_LIMIT_REGISTER: '1000000000/1s',
  RATE_LIMIT_USER_LIST: '1000000000/1s',
  RATE_LIMIT_USER_UPDATE: '1000000000/1s',
  RATE_LIMIT_DEFAULT: '1000000000/1s',
  ZITADEL_RECONCILE_INTERVAL_SECONDS: '0',
};

/**
 * The identity provider in the benchmark's own process, so that users-api runs as it is deployed:
 * NODE_ENV=production against an external Zitadel (here the stand-in, speaking Zitadel's API), not with
 * the development provider loaded inside it. Returns the provider and the service's environment for it.
 */
async function startIdentityProvider(
  databaseUrl: string,
  servicePort: number,
  admin?: { email: string; password: string },
): Promise<{ idp: DevIdentityProvider; env: Record<string, string> }> {
  const clientId = 'users-api';
  const idp = await startDevIdentityProvider({
    databaseUrl,
    clients: [{ clientId, redirectUris: [`http://127.0.0.1:${servicePort}/api/users/login/callback`] }],
    admin,
    logger: { log: () => undefined, warn: (msg) => console.warn(msg) },
  });
  return {
    idp,
    env: {
      NODE_ENV: 'production',
      ZITADEL_URL: idp.url,
      ZITADEL_ORG_ID: idp.orgId,
      ZITADEL_PROJECT_ID: idp.projectId,
      ZITADEL_CLIENT_ID: clientId,
      ZITADEL_PAT: idp.serviceAccountToken,
    },
  };
}

/**
 * users-api as it is deployed (production mode, `start:prod`'s Node flags, the identity provider outside
 * it) with every rate limit lifted, logging warnings only. The caller stops both: kill the service, then
 * close the provider.
 */
export async function startServiceAsDeployed(options: {
  databaseUrl: string;
  signingKey: string;
  port: number;
  poolMax: number;
  /** Created in the identity provider, for scripts that log in. */
  admin?: { email: string; password: string };
  /** Write a V8 CPU profile of the service here (`--cpu-prof`), for `npm run bench -- --profile DIR`. */
  profileDir?: string;
}): Promise<{ service: ChildProcess; idp: DevIdentityProvider }> {
  const { idp, env } = await startIdentityProvider(options.databaseUrl, options.port, options.admin);
  const service = startNode(
    'dist/src/main.js',
    {
      ...env,
      ...UNLIMITED,
      DATABASE_URL: options.databaseUrl,
      SESSION_SIGNING_KEY: options.signingKey,
      DB_POOL_MAX: String(options.poolMax),
      PORT: String(options.port),
      LOG_LEVEL: 'warn',
      DATA_DIR: `/tmp/users-api-bench-${randomUUID()}`,
    },
    [
      ...(await productionNodeFlags()),
      ...(options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`] : []),
    ],
  );
  return { service, idp };
}
