/**
 * `npm run bench [-- --users 1000000 --duration 10 --connections 20 --only me --seed-only]`
 *
 * Seeds users in bulk, starts users-api and the bare baseline (bench/baseline-server.ts) on the same
 * database with the same signing key, drives both with autocannon on the hot endpoints, and prints one
 * table per run: req/s, p50, p97.5, p99, service/baseline ratio, and the service's peak RSS. The same
 * figures go to bench/results/<users>-<time>.json. Only loopback is ever contacted.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { loadCursorSigner } from '../src/common/http/cursor-signer.js';
import { MAX_OFFSET } from '../src/common/http/pagination.js';
import pg from 'pg';
import {
  cpuMs,
  DEFAULT_DATABASE_URL,
  ensureDatabase,
  ensureSeeded,
  freePort,
  newSigningKey,
  peakRss,
  pickSeededUser,
  startNode,
  startServiceAsDeployed,
  tokenFor,
  waitFor,
} from './harness.js';

const { values: args } = parseArgs({
  options: {
    users: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '20' },
    search: { type: 'string', default: 'ann' },
    database: { type: 'string', default: DEFAULT_DATABASE_URL },
    only: { type: 'string' },
    'seed-only': { type: 'boolean', default: false },
    // A directory for a V8 CPU profile of the service (open it in Chrome DevTools or speedscope).
    profile: { type: 'string' },
  },
});
const USERS = Number(args.users);
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
// Free ports, so that runs in parallel (other worktrees on the same machine) do not collide.
const [SERVICE_PORT, BASELINE_PORT] = await Promise.all([freePort(), freePort()]);
const POOL_MAX = 10;

interface Scenario {
  name: string;
  method: 'GET' | 'PUT';
  path: string;
  token: string;
  /** Several bodies are sent in turn (each connection cycles through them). */
  bodies?: string[];
}

interface Measured {
  rps: number;
  p50: number;
  p97_5: number;
  p99: number;
  non2xx: number;
  errors: number;
}

async function drive(port: number, scenario: Scenario, duration = DURATION): Promise<Measured> {
  const result = await autocannon({
    url: `http://127.0.0.1:${port}${scenario.path}`,
    method: scenario.method,
    connections: CONNECTIONS,
    duration,
    headers: {
      authorization: `Bearer ${scenario.token}`,
      ...(scenario.bodies ? { 'content-type': 'application/json' } : {}),
    },
    requests: scenario.bodies?.map((body) => ({ body })),
  });
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p97_5: result.latency.p97_5,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
  };
}

/** bench/results/<name>-<time>.json, with the machine it ran on. */
async function writeResults(name: string, results: Record<string, unknown>): Promise<void> {
  const machine = { cpus: cpus().length, node: process.version };
  await mkdir('bench/results', { recursive: true });
  const out = `bench/results/${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(out, JSON.stringify({ ...results, machine }, null, 2));
  console.log(`written to ${out}`);
}

/** The size on disk of the users table and of each of its indexes, in MB (issue 18 §4). */
async function storageOf(client: pg.Client) {
  const { rows } = await client.query<{ name: string; mb: number }>(
    `SELECT indexrelid::regclass::text AS name, round(pg_relation_size(indexrelid) / 1048576.0)::int AS mb
     FROM pg_index WHERE indrelid = 'users'::regclass ORDER BY 2 DESC`,
  );
  const {
    rows: [table],
  } = await client.query<{ mb: number }>(`SELECT round(pg_table_size('users') / 1048576.0)::int AS mb`);
  return {
    table_mb: table.mb,
    indexes_mb: rows.reduce((sum, row) => sum + row.mb, 0),
    index_mb: Object.fromEntries(rows.map((row) => [row.name, row.mb])),
  };
}

async function main(): Promise<void> {
  const url = args.database;
  await ensureDatabase(url);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const seeded = await ensureSeeded(client, USERS);
  const storage = await storageOf(client);
  console.log(`users: table ${storage.table_mb} MB, indexes ${storage.indexes_mb} MB`);
  if (args['seed-only']) {
    await client.end();
    if (seeded) await writeResults(`seed-${USERS}`, { users: USERS, seeded, storage });
    return;
  }

  const signingKey = newSigningKey();
  const userId = await pickSeededUser(client, 'user');
  const adminId = await pickSeededUser(client, 'admin');
  const userToken = await tokenFor(client, userId, signingKey);
  const adminToken = await tokenFor(client, adminId, signingKey);

  // The admin administers one organization and lists only its users (issue 19): a cursor 90% of the way
  // through that organization's default order, and the same depth as an offset.
  const {
    rows: [{ org_id: orgId, n: orgUsers }],
  } = await client.query<{ org_id: string; n: number }>(
    `SELECT org_id, (SELECT count(*)::int FROM users o WHERE o.org_id = u.org_id AND o.status <> 'deleted') AS n
     FROM users u WHERE id = $1`,
    [adminId],
  );
  const depth = Math.floor(orgUsers * 0.9);
  const { rows: deep } = await client.query<{ value: string; id: string }>(
    `SELECT created_at::text AS value, id FROM users WHERE org_id = $2 AND status <> 'deleted'
     ORDER BY created_at, id OFFSET $1 LIMIT 1`,
    [depth, orgId],
  );
  // Signed as the service signs it (the cursor key derives from the session signing key).
  const cursor = (
    await loadCursorSigner({
      configured: undefined,
      sessionKey: signingKey,
      sessionKeyFile: undefined,
      dataDir: '.',
    })
  ).sign(JSON.stringify(['created_at', deep[0].value, deep[0].id]));

  const offsetDepth = Math.min(depth, MAX_OFFSET);
  // Heaviest last.
  const all: Scenario[] = [
    { name: 'GET /api/users/me', method: 'GET', path: '/api/users/me', token: userToken },
    {
      name: 'GET /api/users?status=active&role=user&limit=100',
      method: 'GET',
      path: '/api/users?status=active&role=user&limit=100',
      token: adminToken,
    },
    {
      name: `deep page by cursor (row ${depth})`,
      method: 'GET',
      path: `/api/users?limit=50&cursor=${cursor}`,
      token: adminToken,
    },
    {
      name: 'PUT /api/users/:id/settings',
      method: 'PUT',
      path: `/api/users/${userId}/settings`,
      token: userToken,
      // Alternating values, so that every request changes what is stored (an unchanged value is not
      // written again by the service, which would make a constant body measure a read).
      bodies: [
        JSON.stringify({ theme: 'dark', language: 'en' }),
        JSON.stringify({ theme: 'light', language: 'de' }),
      ],
    },

    {
      name: `GET /api/users?search=${args.search}`,
      method: 'GET',
      path: `/api/users?search=${args.search}`,
      token: adminToken,
    },
    {
      // The deepest offset the API serves (MAX_OFFSET); deeper pages are the cursor scenario's.
      name: `deepest offset page (row ${offsetDepth})`,
      method: 'GET',
      path: `/api/users?limit=50&offset=${offsetDepth}`,
      token: adminToken,
    },
  ];
  const scenarios = all.filter((s) => !args.only || s.name.includes(args.only));

  const { service, idp } = await startServiceAsDeployed({
    databaseUrl: url,
    signingKey,
    port: SERVICE_PORT,
    poolMax: POOL_MAX,
    profileDir: args.profile,
  });
  const baseline = startNode('dist/bench/baseline-server.js', {
    DATABASE_URL: url,
    SESSION_SIGNING_KEY: signingKey,
    DB_POOL_MAX: String(POOL_MAX),
    PORT: String(BASELINE_PORT),
  });
  const rows: Record<string, unknown>[] = [];
  try {
    await Promise.all([
      waitFor(`http://127.0.0.1:${SERVICE_PORT}/health/live`),
      waitFor(`http://127.0.0.1:${BASELINE_PORT}/api/users/me`),
    ]);
    let servicePeakMb = 0;
    for (const scenario of scenarios) {
      // Let statements of the previous scenario (deep offsets run for seconds) drain first.
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      // A short warm-up for each server (JIT, pool, caches), not counted.
      await drive(SERVICE_PORT, scenario, 2);
      await drive(BASELINE_PORT, scenario, 2);
      const serviceCpuBefore = await cpuMs(service.pid!);
      const { result: svc, peakMb } = await peakRss(service.pid!, () => drive(SERVICE_PORT, scenario));
      const serviceCpu = (await cpuMs(service.pid!)) - serviceCpuBefore;
      const baselineCpuBefore = await cpuMs(baseline.pid!);
      const base = await drive(BASELINE_PORT, scenario);
      const baselineCpu = (await cpuMs(baseline.pid!)) - baselineCpuBefore;
      const perRequestUs = (ms: number, m: Measured) =>
        Math.round((1000 * ms) / Math.max(1, m.rps * DURATION));
      servicePeakMb = Math.max(servicePeakMb, peakMb);
      rows.push({
        endpoint: scenario.name,
        'service req/s': svc.rps,
        'service p50 ms': svc.p50,
        'service p97.5 ms': svc.p97_5,
        'service p99 ms': svc.p99,
        'baseline req/s': base.rps,
        'baseline p99 ms': base.p99,
        ratio: Number((svc.rps / Math.max(1, base.rps)).toFixed(2)),
        'service non-2xx': svc.non2xx + svc.errors,
        'baseline non-2xx': base.non2xx + base.errors,
        'service peak RSS MB': peakMb,
        // CPU of the Node process alone per request (not PostgreSQL's): steadier than req/s on a busy machine.
        'service CPU µs/req': perRequestUs(serviceCpu, svc),
        'baseline CPU µs/req': perRequestUs(baselineCpu, base),
      });
    }
    console.log(
      `\nusers-api vs bare baseline: ${USERS} users, ${CONNECTIONS} connections, ${DURATION} s per run`,
    );
    console.table(rows);
    await writeResults(String(USERS), {
      users: USERS,
      connections: CONNECTIONS,
      duration: DURATION,
      storage,
      servicePeakMb,
      rows,
    });
  } finally {
    service.kill('SIGTERM');
    baseline.kill('SIGTERM');
    await idp.close();
    await client.query(`DELETE FROM sessions WHERE device_info = 'bench'`);
    await client.end();
  }
}

await main();
