import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { ChangeFeedService } from '../src/change-feed/change-feed.service.js';
import { expectProblem } from './support/problem.js';
import { bearer, signedInUser, type SignedInUser } from './support/identity.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * The token check and the profile read are served from memory (issue 18), and stay exactly as strict as
 * a database read: every change arrives through PostgreSQL LISTEN/NOTIFY from the triggers of migration
 * ChangeNotifications, whoever makes it. Here the changes are made with plain SQL behind the service's
 * back (as an operator or another instance would), and the listener's connection runs through a proxy
 * the tests can cut or silence.
 */
describe('in-process caches kept coherent by LISTEN/NOTIFY', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let db: DataSource;
  let feed: ChangeFeedService;

  beforeAll(async () => {
    const url = new URL(process.env.TEST_DATABASE_URL!);
    proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
    const listenUrl = new URL(url);
    listenUrl.hostname = '127.0.0.1';
    listenUrl.port = String(proxy.port);
    t = await startTestApp({ CACHE_LISTEN_DATABASE_URL: listenUrl.toString() });
    db = t.app.get(DataSource);
    feed = t.app.get(ChangeFeedService);
    expect(feed.trusted).toBe(true);
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
  });

  const me = (user: SignedInUser) =>
    t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });

  /** Polls until `check` holds, for at most `ms`; returns how long it took. */
  async function within(ms: number, check: () => Promise<boolean> | boolean): Promise<number> {
    const started = Date.now();
    while (!(await check())) {
      if (Date.now() - started > ms) throw new Error(`not within ${ms} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return Date.now() - started;
  }
  const refusedWithin = async (user: SignedInUser, ms: number) => {
    await within(ms, async () => (await me(user)).statusCode === 401);
    expectProblem(await me(user), 401, 'unauthorized');
  };

  it('answers a repeated GET /api/users/me without taking a database connection', async () => {
    const user = await signedInUser(t);
    expect((await me(user)).statusCode).toBe(200);
    const pool = (db.driver as unknown as { master: Pool }).master;
    const connect = jest.spyOn(pool, 'connect');
    try {
      for (let i = 0; i < 5; i++) expect((await me(user)).statusCode).toBe(200);
      expect(connect).not.toHaveBeenCalled();
    } finally {
      connect.mockRestore();
    }
  });

  it('a session ended with SQL behind the service’s back is refused within a second', async () => {
    const user = await signedInUser(t);
    expect((await me(user)).statusCode).toBe(200);
    await db.query(`UPDATE sessions SET status = 'terminated' WHERE id = $1`, [user.sessionId]);
    await refusedWithin(user, 1_000);
  });

  it('a user suspended, deleted or stripped of a role with SQL is treated so within a second', async () => {
    const suspended = await signedInUser(t);
    const deleted = await signedInUser(t);
    const demoted = await signedInUser(t, { roles: ['admin'] });
    const list = () => t.http({ method: 'GET', url: '/api/users?limit=1', headers: bearer(demoted.token) });
    for (const user of [suspended, deleted]) expect((await me(user)).statusCode).toBe(200);
    expect((await list()).statusCode).toBe(200);

    await db.query(`UPDATE users SET status = 'suspended' WHERE id = $1`, [suspended.userId]);
    await db.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = $1`, [deleted.userId]);
    await db.query(`UPDATE users SET roles = '{user}' WHERE id = $1`, [demoted.userId]);
    await refusedWithin(suspended, 1_000);
    await refusedWithin(deleted, 1_000);
    await within(1_000, async () => (await list()).statusCode === 403);
    expectProblem(await list(), 403, 'forbidden');
  });

  it('a profile changed with SQL shows in GET /api/users/me within a second', async () => {
    const user = await signedInUser(t);
    expect((await me(user)).json()).toMatchObject({ display_name: expect.any(String) });
    await db.query(`UPDATE users SET display_name = 'Changed Behind' WHERE id = $1`, [user.userId]);
    await within(
      1_000,
      async () => (await me(user)).json<{ display_name: string }>().display_name === 'Changed Behind',
    );
  });

  it('reads its own writes: a logout or an update through this instance shows on the very next request', async () => {
    const user = await signedInUser(t);
    expect((await me(user)).statusCode).toBe(200);
    const updated = await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}`,
      headers: bearer(user.token),
      payload: { display_name: 'Written Here' },
    });
    expect(updated.statusCode).toBe(200);
    expect((await me(user)).json()).toMatchObject({ display_name: 'Written Here' });
    expect(
      (await t.http({ method: 'POST', url: '/api/users/logout', headers: bearer(user.token) })).statusCode,
    ).toBe(200);
    expectProblem(await me(user), 401, 'unauthorized');
  });

  it('waits for the barrier after a write of users or sessions, not after one of settings (WritesNoCachedRows)', async () => {
    const user = await signedInUser(t);
    const barrier = jest.spyOn(feed, 'barrier');
    try {
      const put = (url: string, payload: object) =>
        t.http({ method: 'PUT', url, headers: bearer(user.token), payload });
      expect((await put(`/api/users/${user.userId}/settings`, { theme: 'dark' })).statusCode).toBe(200);
      expect(barrier).not.toHaveBeenCalled();
      expect((await put(`/api/users/${user.userId}`, { display_name: 'Barrier Here' })).statusCode).toBe(200);
      expect(barrier).toHaveBeenCalledTimes(1);
      // What makes skipping it safe: a settings write sends no change notice that a cache would need
      // (while the profile update above did: users:<id>).
      const notices: string[] = [];
      const listener = (await (db.driver as unknown as { master: Pool }).master.connect()) as unknown as {
        query: (sql: string) => Promise<unknown>;
        on: (event: 'notification', fn: (n: { payload?: string }) => void) => void;
        release: () => void;
      };
      try {
        listener.on('notification', (n) => notices.push(n.payload ?? ''));
        await listener.query('LISTEN users_api_changes');
        expect((await put(`/api/users/${user.userId}/settings`, { theme: 'light' })).statusCode).toBe(200);
        await feed.barrier();
        // Other spec files write to the same database meanwhile: only this user's notices count.
        expect(notices.filter((n) => n.includes(user.userId))).toEqual([]);
        // …while a profile write does: the listener here would have seen one.
        expect((await put(`/api/users/${user.userId}`, { display_name: 'Noticed' })).statusCode).toBe(200);
        await feed.barrier();
        expect(notices.filter((n) => n.includes(user.userId))).not.toEqual([]);
      } finally {
        await listener.query('UNLISTEN *');
        listener.release();
      }
    } finally {
      barrier.mockRestore();
    }
  });

  it('a lost listener connection bypasses the caches until it is back and flushed: no stale acceptance', async () => {
    const revoked = await signedInUser(t);
    const other = await signedInUser(t);
    for (const user of [revoked, other]) expect((await me(user)).statusCode).toBe(200);

    proxy.cut();
    await within(5_000, () => !feed.trusted);
    // Nobody hears this change's notice; the check must read the database to see it.
    await db.query(`UPDATE sessions SET status = 'terminated' WHERE id = $1`, [revoked.sessionId]);
    expectProblem(await me(revoked), 401, 'unauthorized');
    expect((await me(other)).statusCode).toBe(200);
    // While the listener is gone, every check reads the database.
    const pool = (db.driver as unknown as { master: Pool }).master;
    const connect = jest.spyOn(pool, 'connect');
    try {
      expect((await me(other)).statusCode).toBe(200);
      expect(connect).toHaveBeenCalled();
    } finally {
      connect.mockRestore();
    }

    proxy.restore();
    await within(15_000, () => feed.trusted);
    expectProblem(await me(revoked), 401, 'unauthorized');
    expect((await me(other)).statusCode).toBe(200);
    // Notices flow again.
    await db.query(`UPDATE sessions SET status = 'terminated' WHERE id = $1`, [other.sessionId]);
    await refusedWithin(other, 1_000);
  });

  it('a listener connection that goes silent is noticed by its probe, and the caches bypassed', async () => {
    const user = await signedInUser(t);
    expect((await me(user)).statusCode).toBe(200);
    proxy.pause();
    try {
      // The probe runs every 10 s and gives a connection 5 s to answer.
      await within(25_000, () => !feed.trusted);
      await db.query(`UPDATE sessions SET status = 'terminated' WHERE id = $1`, [user.sessionId]);
      expectProblem(await me(user), 401, 'unauthorized');
    } finally {
      proxy.restore();
    }
    await within(15_000, () => feed.trusted);
    expectProblem(await me(user), 401, 'unauthorized');
  }, 60_000);
});
