/**
 * `npm run soak [-- --seconds 60 --concurrency 16]`
 *
 * A mixed load on a running users-api for a fixed time: profile reads, list searches, settings writes,
 * password logins through the identity provider, and session terminations. Passes when there was no 5xx,
 * resident memory grew by at most 10% after the warm-up, and no database connection outlived the pool.
 * Writes its figures to bench/results/soak-<time>.json. Only loopback is ever contacted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import {
  DEFAULT_DATABASE_URL,
  ensureDatabase,
  ensureSeeded,
  newSigningKey,
  pickSeededUser,
  rssMb,
  startServiceAsDeployed,
  tokenFor,
  waitFor,
} from './harness.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '16' },
    users: { type: 'string', default: '10000' },
    database: { type: 'string', default: DEFAULT_DATABASE_URL },
  },
});
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const PORT = 3202;
const BASE = `http://127.0.0.1:${PORT}`;
const ADMIN = { email: 'admin@localhost.test', password: 'Bench-Passw0rd!' };
const POOL_MAX = 10;

/** The service's own connections (it names itself `users-api`), not the identity provider's or ours. */
async function connections(client: pg.Client, database: string): Promise<number> {
  const { rows } = await client.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'users-api'`,
    [database],
  );
  return rows[0].n;
}

async function main(): Promise<void> {
  const url = args.database;
  const database = new URL(url).pathname.slice(1);
  await ensureDatabase(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await ensureSeeded(client, Number(args.users));
  const signingKey = newSigningKey();
  const userId = await pickSeededUser(client, 'user');
  // Four sessions of one user: the reads and writes spread over several session rows.
  const userIds = [userId, userId, userId, userId];
  const userTokens: string[] = [];
  for (const id of userIds) userTokens.push(await tokenFor(client, id, signingKey));
  const adminToken = await tokenFor(client, await pickSeededUser(client, 'admin'), signingKey);
  const idleConnections = await connections(client, database);

  const { service, idp } = await startServiceAsDeployed({
    databaseUrl: url,
    signingKey,
    port: PORT,
    poolMax: POOL_MAX,
    admin: ADMIN,
  });
  const statuses = new Map<string, number>();
  const rss: { t: number; mb: number }[] = [];
  let failures = 0;
  try {
    await waitFor(`${BASE}/health/ready`);
    const started = Date.now();
    const deadline = started + SECONDS * 1000;
    const sampler = setInterval(
      () => void rssMb(service.pid!).then((mb) => rss.push({ t: (Date.now() - started) / 1000, mb })),
      1000,
    );
    const call = async (name: string, path: string, init: RequestInit & { token?: string } = {}) => {
      const res = await fetch(`${BASE}${path}`, {
        ...init,
        headers: {
          ...(init.body ? { 'content-type': 'application/json' } : {}),
          ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
        },
      });
      const key = `${name} ${res.status}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      return res;
    };
    const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)];
    const worker = async () => {
      while (Date.now() < deadline) {
        const roll = Math.random();
        try {
          if (roll < 0.5) {
            await call('me', '/api/users/me', { token: pick(userTokens) });
          } else if (roll < 0.65) {
            await call('search', `/api/users?search=${pick(['ann', 'sil', 'joh', 'mar'])}&limit=20`, {
              token: adminToken,
            });
          } else if (roll < 0.85) {
            const index = Math.floor(Math.random() * userIds.length);
            await call('settings', `/api/users/${userIds[index]}/settings`, {
              method: 'PUT',
              token: userTokens[index],
              body: JSON.stringify({ theme: pick(['light', 'dark', 'system']), default_bot: `bot-${roll}` }),
            });
          } else {
            // A login and the end of the session it opened, as a short-lived client would do.
            const login = await call('login', '/api/users/login', {
              method: 'POST',
              body: JSON.stringify(ADMIN),
            });
            if (login.ok) {
              const { session_token: token, user_id: userId } = (await login.json()) as {
                session_token: string;
                user_id: string;
              };
              const sid = (
                JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { sid: string }
              ).sid;
              await call('terminate', `/api/users/${userId}/sessions/${sid}`, { method: 'DELETE', token });
            }
          }
        } catch {
          failures++;
        }
      }
    };
    await Promise.all(Array.from({ length: Number(args.concurrency) }, worker));
    clearInterval(sampler);
    const busyConnections = await connections(client, database);

    const afterWarmup = rss.filter((s) => s.t >= WARMUP && s.t < WARMUP + 5).map((s) => s.mb);
    const end = rss.slice(-5).map((s) => s.mb);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
    const growth = mean(end) / Math.max(1, mean(afterWarmup)) - 1;
    const fiveXx = [...statuses].filter(([key]) => key.endsWith(' 500') || / 5\d\d$/.test(key));
    const total = [...statuses.values()].reduce((a, b) => a + b, 0);

    service.kill('SIGTERM');
    await new Promise((resolve) => service.once('exit', resolve));
    await new Promise((r) => setTimeout(r, 500));
    const leftConnections = (await connections(client, database)) - idleConnections;

    const report = {
      seconds: SECONDS,
      concurrency: Number(args.concurrency),
      requests: total,
      rps: Math.round(total / SECONDS),
      statuses: Object.fromEntries([...statuses].sort()),
      network_failures: failures,
      rss_mb_after_warmup: Math.round(mean(afterWarmup)),
      rss_mb_at_end: Math.round(mean(end)),
      rss_growth_pct: Number((growth * 100).toFixed(1)),
      db_connections_under_load: busyConnections - idleConnections,
      db_connections_left_after_exit: leftConnections,
    };
    console.log(JSON.stringify(report, null, 2));
    await mkdir('bench/results', { recursive: true });
    await writeFile(
      `bench/results/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`,
      JSON.stringify(report, null, 2),
    );
    const problems = [
      ...(fiveXx.length ? [`5xx answers: ${fiveXx.map(([k, n]) => `${k} ×${n}`).join(', ')}`] : []),
      ...(failures ? [`${failures} requests failed without an answer`] : []),
      ...(growth > 0.1 ? [`RSS grew ${(growth * 100).toFixed(1)}% after warm-up`] : []),
      ...(leftConnections > 0 ? [`${leftConnections} database connections outlived the service`] : []),
    ];
    if (problems.length) {
      console.error(`soak FAILED: ${problems.join('; ')}`);
      process.exitCode = 1;
    } else {
      console.log('soak passed: no 5xx, RSS growth within 10%, no leaked connections');
    }
  } finally {
    if (service.exitCode === null) service.kill('SIGTERM');
    await idp.close();
    await client.query(`DELETE FROM sessions WHERE device_info = 'bench'`);
    await client.end();
  }
}

await main();
