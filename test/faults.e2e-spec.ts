import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import { bearer, credentials, signedInUser, type SignedInUser, newRegistration } from './support/identity.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The first app runs the embedded identity provider; a second one reaches it through a proxy the test
 * controls, configured like a deployment against a real Zitadel (one retry, `env` on top).
 */
async function behindZitadelProxy(env: Record<string, string>): Promise<{
  primary: TestApp;
  proxy: TcpProxy;
  t: TestApp;
}> {
  const primary = await startTestApp();
  const idp = primary.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  const url = new URL(idp.url);
  const proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
  const t = await startTestApp({
    ZITADEL_URL: `http://127.0.0.1:${proxy.port}`,
    ZITADEL_PAT: idp.serviceAccountToken,
    ZITADEL_ORG_ID: idp.orgId,
    ZITADEL_PROJECT_ID: idp.projectId,
    ZITADEL_CLIENT_ID: 'users-api',
    ZITADEL_RETRIES: '1',
    ...env,
  });
  return { primary, proxy, t };
}

interface Write {
  value: string;
  status: number;
  error?: string;
  at: number;
  ms: number;
}

/**
 * The service with its dependencies failing underneath it, through TCP proxies the tests control: what
 * callers see (503 upstream_unavailable in bounded time, never a hang or a 500), that it recovers without
 * a restart, and that nothing answered 2xx is lost.
 */
describe('faults', () => {
  describe('PostgreSQL unreachable during a write load', () => {
    const CONNECT_TIMEOUT_MS = 1_000;
    const STATEMENT_TIMEOUT_MS = 1_000;
    /**
     * The longest a write may take: a connection wait, then a statement and its rollback each cut off by the
     * driver's query timeout (statement timeout + 1 s), and a margin for two loaded cores.
     */
    const BOUND_MS = CONNECT_TIMEOUT_MS + 2 * (STATEMENT_TIMEOUT_MS + 1_000) + 1_000;
    let proxy: TcpProxy;
    let t: TestApp;
    let users: SignedInUser[];
    let direct: pg.Client;

    beforeAll(async () => {
      const real = new URL(process.env.TEST_DATABASE_URL!);
      proxy = await TcpProxy.start({ host: real.hostname, port: Number(real.port || 5432) });
      const viaProxy = new URL(real);
      viaProxy.host = `127.0.0.1:${proxy.port}`;
      // The embedded identity provider keeps its state in a database of its own (not behind the proxy);
      // the writes below (avatar_url) do not call it anyway.
      t = await startTestApp({
        DATABASE_URL: viaProxy.toString(),
        DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS),
        DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      });
      users = await Promise.all([signedInUser(t), signedInUser(t)]);
      direct = new pg.Client({ connectionString: real.toString() });
      await direct.connect();
    }, 60_000);
    afterAll(async () => {
      proxy?.restore();
      await direct?.end();
      await t?.close();
      await proxy?.close();
    });

    /** Sequential PUT avatar_url writes by one user until `stop()` says so. */
    async function writer(user: SignedInUser, log: Write[], stop: () => boolean): Promise<void> {
      for (let n = 0; !stop(); n++) {
        const value = `https://example.test/avatars/${user.userId}/${Date.now()}-${n}.png`;
        const started = Date.now();
        const res = await t.http({
          method: 'PUT',
          url: `/api/users/${user.userId}`,
          headers: bearer(user.token),
          payload: { avatar_url: value },
        });
        const body = res.json<{ error?: string }>();
        log.push({ value, status: res.statusCode, error: body.error, at: started, ms: Date.now() - started });
        if (res.statusCode !== 200) await sleep(50);
      }
    }

    /** Runs the load through one fault: `fault` at 300 ms, restore after `outageMs`, then until recovered. */
    async function throughFault(fault: () => void, outageMs: number) {
      const logs: Write[][] = users.map(() => []);
      let restoredAt = Infinity;
      let done = false;
      const load = Promise.all(users.map((user, i) => writer(user, logs[i], () => done)));
      await sleep(300);
      fault();
      await sleep(outageMs);
      proxy.restore();
      restoredAt = Date.now();
      // Until every writer has had a success after the restore, or 8 s (the assertion below wants 5).
      while (
        Date.now() - restoredAt < 8_000 &&
        !logs.every((log) => log.some((w) => w.status === 200 && w.at >= restoredAt))
      ) {
        await sleep(50);
      }
      await sleep(200);
      done = true;
      await load;
      return { logs, restoredAt };
    }

    async function expectOutcome(logs: Write[][], restoredAt: number) {
      const all = logs.flat();
      const summary = all.map((w) => `${w.status}/${w.ms}ms`).join(' ');
      // Only success or "try again"; never a 500, never a hang.
      expect(all.filter((w) => w.status !== 200 && w.status !== 503)).toEqual([]);
      expect(all.filter((w) => w.status === 503 && w.error !== 'upstream_unavailable')).toEqual([]);
      expect(all.filter((w) => w.status === 503).length).toBeGreaterThan(0);
      // Bounded: no request waits much past the connect and query timeouts.
      const slowest = Math.max(...all.map((w) => w.ms));
      if (slowest >= BOUND_MS) throw new Error(`A write took ${slowest} ms: ${summary}`);
      for (const log of logs) {
        // Recovered within 5 s of the restore, without a restart.
        const firstAfter = log.find((w) => w.status === 200 && w.at >= restoredAt);
        expect(firstAfter && firstAfter.at + firstAfter.ms - restoredAt).toBeLessThan(5_000);
      }
      // Every write answered 2xx is in the real database: its audit event, written in the same
      // transaction, and the final value is that of the last success or of a later (answered 503) attempt.
      for (const [i, log] of logs.entries()) {
        const user = users[i];
        const { rows } = await direct.query<{ changes: { avatar_url?: { after?: string } } }>(
          `SELECT changes FROM audit_events WHERE target_user_id = $1`,
          [user.userId],
        );
        const recorded = new Set(rows.map((r) => r.changes.avatar_url?.after));
        const acknowledged = log.filter((w) => w.status === 200).map((w) => w.value);
        expect(acknowledged.filter((v) => !recorded.has(v))).toEqual([]);
        const lastOk = log.map((w) => w.status).lastIndexOf(200);
        const { rows: current } = await direct.query<{ avatar_url: string }>(
          `SELECT avatar_url FROM users WHERE id = $1`,
          [user.userId],
        );
        expect(log.slice(lastOk).map((w) => w.value)).toContain(current[0].avatar_url);
      }
    }

    it('connections cut and refused: 503 upstream_unavailable, recovery within 5 s, no acknowledged write lost', async () => {
      const { logs, restoredAt } = await throughFault(() => proxy.cut(), 1_500);
      await expectOutcome(logs, restoredAt);
    }, 30_000);

    it('the user list, which reads through the pool without TypeORM (poolQuery): 503 upstream_unavailable while cut, 200 once restored', async () => {
      const admin = await signedInUser(t, { roles: ['admin'] });
      const list = async () => {
        const started = Date.now();
        const res = await t.http({ method: 'GET', url: '/api/users?limit=5', headers: bearer(admin.token) });
        return {
          status: res.statusCode,
          error: res.json<{ error?: string }>().error,
          ms: Date.now() - started,
        };
      };
      expect((await list()).status).toBe(200);
      proxy.cut();
      try {
        const during = await list();
        expect({ status: during.status, error: during.error }).toEqual({
          status: 503,
          error: 'upstream_unavailable',
        });
        expect(during.ms).toBeLessThan(BOUND_MS);
      } finally {
        proxy.restore();
      }
      const deadline = Date.now() + 5_000;
      let after = await list();
      while (after.status !== 200 && Date.now() < deadline) {
        await sleep(100);
        after = await list();
      }
      expect(after.status).toBe(200);
    }, 30_000);

    it('a network gone silent (no answers at all): the same, bounded by the connect and query timeouts', async () => {
      // Longer than the bound: a request that waited for the network to come back would break it.
      const { logs, restoredAt } = await throughFault(() => proxy.pause(), BOUND_MS + 1_000);
      await expectOutcome(logs, restoredAt);
    }, 30_000);
  });

  describe('Zitadel unreachable', () => {
    const TIMEOUT_MS = 800;
    let primary: TestApp;
    let t: TestApp;
    let proxy: TcpProxy;
    let user: SignedInUser;

    beforeAll(async () => {
      ({ primary, proxy, t } = await behindZitadelProxy({ ZITADEL_TIMEOUT_MS: String(TIMEOUT_MS) }));
      user = await signedInUser(t);
    }, 60_000);
    afterAll(async () => {
      proxy?.restore();
      await t?.close();
      await primary?.close();
      await proxy?.close();
    });

    const login = () => t.http({ method: 'POST', url: '/api/users/login', payload: credentials(user) });
    const register = () =>
      t.http({ method: 'POST', url: '/api/users/register', payload: newRegistration('faulty', 'F') });
    const timed = async (call: () => Promise<{ statusCode: number; json: <T>() => T }>) => {
      const started = Date.now();
      const res = await call();
      return {
        status: res.statusCode,
        body: res.json<{ error?: string; message?: string }>(),
        ms: Date.now() - started,
      };
    };

    it('login and register answer 503 with a clear message, fast once the circuit is open; sessions keep working; it recovers', async () => {
      expect((await timed(login)).status).toBe(200);
      proxy.pause();

      const first = [await timed(login), await timed(register), await timed(login)];
      for (const answer of first) {
        expect(answer).toMatchObject({
          status: 503,
          body: {
            error: 'upstream_unavailable',
            message: expect.stringMatching(/identity provider is unavailable/),
          },
        });
        // One attempt (login and register are not retried) bounded by the per-call timeout.
        expect(answer.ms).toBeLessThan(TIMEOUT_MS + 1_000);
      }
      // Consecutive failures have opened the circuit: no more waiting for timeouts.
      while ((await timed(login)).ms > TIMEOUT_MS / 2) {
        /* until the threshold is reached; bounded by the test timeout */
      }
      const fast = [await timed(login), await timed(register)];
      for (const answer of fast) {
        expect(answer).toMatchObject({ status: 503, body: { error: 'upstream_unavailable' } });
        expect(answer.ms).toBeLessThan(TIMEOUT_MS / 2);
      }

      // Existing sessions are ours: they do not need Zitadel.
      const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });
      expect(me.statusCode).toBe(200);

      proxy.restore();
      const restoredAt = Date.now();
      let answer = await timed(login);
      while (answer.status !== 200 && Date.now() - restoredAt < 8_000) {
        await sleep(100);
        answer = await timed(login);
      }
      expect(answer.status).toBe(200);
      expect(Date.now() - restoredAt).toBeLessThan(5_000);
      expect((await timed(register)).status).toBe(201);
    }, 40_000);
  });

  describe('Zitadel hanging under admin writes', () => {
    const TIMEOUT_MS = 1_500;
    let primary: TestApp;
    let t: TestApp;
    let proxy: TcpProxy;

    beforeAll(async () => {
      // A small pool, as the contention it shows grows with the writes per connection.
      ({ primary, proxy, t } = await behindZitadelProxy({
        ZITADEL_TIMEOUT_MS: String(TIMEOUT_MS),
        DB_POOL_MAX: '4',
      }));
    }, 60_000);
    afterAll(async () => {
      proxy?.restore();
      await t?.close();
      await primary?.close();
      await proxy?.close();
    });

    it('50 concurrent admin writes waiting on Zitadel hold no pooled connection: /me keeps answering 200', async () => {
      // Made through the first app, which reaches the identity provider directly and signs with the same
      // development key, so the sessions are valid on the second one.
      const admin = await signedInUser(primary, { roles: ['admin'] });
      const targets: SignedInUser[] = [];
      for (let n = 0; n < 10; n++) targets.push(await signedInUser(primary));
      proxy.pause();
      const writes = Array.from({ length: 50 }, (_, n) => {
        const target = targets[n % targets.length];
        const request =
          n % 2
            ? {
                method: 'PUT' as const,
                url: `/api/users/${target.userId}`,
                payload: { display_name: `Hung ${n}` },
              }
            : {
                method: 'POST' as const,
                url: `/api/users/${target.userId}/suspend`,
                payload: { reason: 'hang' },
              };
        return t.http({ ...request, headers: bearer(admin.token) });
      });
      await sleep(200);

      // Before the fix each write held a pooled connection and the user's row lock for the whole wait,
      // so with 4 connections /me waited for a connection (5 s) and answered 503.
      const reads: Array<{ status: number; ms: number }> = [];
      for (let n = 0; n < 10; n++) {
        const started = Date.now();
        const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(targets[0].token) });
        reads.push({ status: me.statusCode, ms: Date.now() - started });
      }
      // Every write gives up on the silent Zitadel before it is back (else a late answer could succeed).
      const answers = await Promise.all(writes);
      proxy.restore();

      expect(reads.map((r) => r.status)).toEqual(Array(10).fill(200));
      // Generous for two loaded cores; the same reads took the 5 s connection timeout before.
      expect(Math.max(...reads.map((r) => r.ms))).toBeLessThan(2_500);
      // Each write either waited for Zitadel and failed (503), or found the user's lease taken (409).
      for (const answer of answers) expect([409, 503]).toContain(answer.statusCode);
      expect(answers.filter((a) => a.statusCode === 503).length).toBeGreaterThanOrEqual(targets.length);
      // Nothing half-done: no local change, no lease left behind.
      const db = t.app.get(DataSource);
      const rows = await db.query<Array<{ n: string }>>(
        `SELECT count(*) AS n FROM users WHERE id = ANY($1) AND (status <> 'active' OR write_lease_until IS NOT NULL)`,
        [targets.map((u) => u.userId)],
      );
      expect(Number(rows[0].n)).toBe(0);
    }, 90_000);
  });
});
