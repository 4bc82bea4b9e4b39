import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHmac } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import type { User } from '../src/users/entities/user.entity.js';
import { UsersService } from '../src/users/users.service.js';
import { WEBHOOK_SIGNING_KEY } from '../src/zitadel-sync/zitadel-events.controller.js';
import {
  RECONCILE_LOCK_KEY,
  ZitadelReconciler,
  type ReconcileResult,
} from '../src/zitadel-sync/zitadel-reconciler.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import { bearer, createIdentityUser, signedInUser, type SignedInUser } from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { isolatedDatabase, startTestApp, type TestApp } from './support/test-app.js';

/**
 * The live loop: the embedded identity provider sends signed Actions v2 events over real HTTP to the
 * listening application, as Zitadel would after a change in its console.
 *
 * On databases of its own (service and identity provider): account and organizations reconcile the
 * shared ones too, and a pass of theirs between a change made here behind the service's back and this
 * file's own pass repaired it first, so the pass under test found nothing to fix.
 */
describe('live sync with Zitadel (signed webhooks, reconciliation)', () => {
  let t: TestApp;
  let databases: Array<Awaited<ReturnType<typeof isolatedDatabase>>>;
  /** The app's environment: these databases, and reconciliation only by hand (the default) in pages of 50. */
  let env: Record<string, string>;
  let zitadel: ZitadelClient;
  let users: UsersService;
  let db: DataSource;
  let key: string;
  let idp: RunningDevIdentityProvider;
  let eventsUrl: string;

  beforeAll(async () => {
    databases = await Promise.all([isolatedDatabase('sync'), isolatedDatabase('sync_idp')]);
    env = {
      DATABASE_URL: databases[0].url,
      DB_MIGRATIONS_RUN: 'true',
      DEV_IDP_DATABASE_URL: databases[1].url,
      ZITADEL_RECONCILE_PAGE_SIZE: '50',
      ZITADEL_RECONCILE_PAGE_DELAY_MS: '0',
    };
    t = await startTestApp(env);
    // Listening (port 0) is what tells the dev-idp where to send its events.
    await t.app.listen(0, '127.0.0.1');
    eventsUrl = `${await t.app.getUrl()}/api/zitadel/events`.replace('[::1]', '127.0.0.1');
    zitadel = t.app.get(ZitadelClient);
    users = t.app.get(UsersService);
    db = t.app.get(DataSource);
    key = t.app.get<string>(WEBHOOK_SIGNING_KEY);
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(async () => {
    await t?.close();
    await Promise.all((databases ?? []).map((database) => database.drop()));
  });

  const sign = (body: string, signingKey = key, at = Math.floor(Date.now() / 1000)) =>
    `t=${at},v1=${createHmac('sha256', signingKey).update(`${at}.${body}`).digest('hex')}`;

  const event = (zitadelId: string, sequence: number, type = 'user.human.profile.changed') =>
    JSON.stringify({
      aggregateID: zitadelId,
      aggregateType: 'user',
      resourceOwner: idp.orgId,
      instanceID: '1',
      version: 'v2',
      sequence,
      event_type: type,
      created_at: new Date().toISOString(),
      userID: '1',
      event_payload: {},
    });

  const post = (body: string, signature?: string) =>
    t.http({
      method: 'POST',
      url: '/api/zitadel/events',
      payload: body,
      headers: {
        'content-type': 'application/json',
        ...(signature === undefined ? {} : { 'zitadel-signature': signature }),
      },
    });

  const local = async (zitadelId: string): Promise<User> => (await users.findByZitadelId(zitadelId))!;

  /** The identity provider's own sequence for a user (Zitadel's aggregate sequence), from its database. */
  const remoteSequence = async (zitadelId: string): Promise<number> => {
    const client = new pg.Client({ connectionString: env.DEV_IDP_DATABASE_URL });
    await client.connect();
    try {
      const { rows } = await client.query<{ sequence: string }>(
        `SELECT sequence FROM dev_idp.users WHERE id = $1`,
        [zitadelId],
      );
      return Number(rows[0].sequence);
    } finally {
      await client.end();
    }
  };

  const appliedSequence = async (zitadelId: string): Promise<number> => {
    const rows = await db.query<Array<{ sequence: string }>>(
      `SELECT sequence FROM zitadel_event_cursors WHERE aggregate_type = 'user' AND aggregate_id = $1`,
      [zitadelId],
    );
    return rows.length ? Number(rows[0].sequence) : 0;
  };

  /**
   * Polls until `done`, for longer than the identity provider's whole delivery schedule (four attempts
   * of up to 2 s with 0.1, 0.5 and 2 s between them): a loaded machine may need its retries.
   */
  async function eventually<T>(read: () => Promise<T>, done: (value: T) => boolean, ms = 15_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = await read();
      if (done(value) || Date.now() > deadline) return value;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Waits until every event the identity provider emitted for the user so far has been applied. */
  const settled = async (zitadelId: string) => {
    const target = await remoteSequence(zitadelId);
    expect(
      await eventually(
        () => appliedSequence(zitadelId),
        (s) => s >= target,
      ),
    ).toBeGreaterThanOrEqual(target);
  };

  const me = (token: string) => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });

  describe('signature (over HTTP)', () => {
    let user: SignedInUser;
    beforeAll(async () => {
      user = await signedInUser(t);
      await settled(user.zitadelId);
    });

    it('accepts a valid signature: 204, no body', async () => {
      const body = event(user.zitadelId, (await appliedSequence(user.zitadelId)) + 1);
      const res = await post(body, sign(body));
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
    });

    it('refuses a signature made with another key: 401 unauthorized', async () => {
      const body = event(user.zitadelId, 10_000);
      expectProblem(await post(body, sign(body, 'not-the-signing-key-at-all')), 401, 'unauthorized');
    });

    it('refuses a tampered body', async () => {
      const body = event(user.zitadelId, 10_000);
      expectProblem(await post(body.replace('10000', '10001'), sign(body)), 401, 'unauthorized');
    });

    it('refuses a timestamp more than 300 s old', async () => {
      const body = event(user.zitadelId, 10_000);
      expectProblem(
        await post(body, sign(body, key, Math.floor(Date.now() / 1000) - 301)),
        401,
        'unauthorized',
      );
    });

    it('refuses a request without the header, or with a malformed one', async () => {
      const body = event(user.zitadelId, 10_000);
      expectProblem(await post(body), 401, 'unauthorized');
      expectProblem(await post(body, 'v1=abc'), 401, 'unauthorized');
    });

    it('accepts several v1 values when one matches (key rotation)', async () => {
      const body = event(user.zitadelId, (await appliedSequence(user.zitadelId)) + 1);
      const wrong = sign(body, 'the-previous-signing-key').split(',')[1];
      const res = await post(body, `${sign(body)},${wrong}`);
      expect(res.statusCode).toBe(204);
    });

    it('verifies the raw bytes: the same JSON with other whitespace is refused', async () => {
      const body = event(user.zitadelId, 10_000);
      const spaced = JSON.stringify(JSON.parse(body), null, 2);
      expectProblem(await post(spaced, sign(body)), 401, 'unauthorized');
    });

    it('ignores unknown event types (204) and refuses a signed body that is no event (400)', async () => {
      const unknown = event(user.zitadelId, 10_000, 'user.human.phone.changed');
      expect((await post(unknown, sign(unknown))).statusCode).toBe(204);
      expect(await appliedSequence(user.zitadelId)).toBeLessThan(10_000);
      const notEvent = JSON.stringify({ hello: 'world' });
      expectProblem(await post(notEvent, sign(notEvent)), 400, 'invalid_request');
    });

    it('refuses signed events with out-of-range sequences as bad requests, never a 500', async () => {
      for (const sequence of ['9999999999999999999', '99999999999999999999', -1, 1.5]) {
        const body = JSON.stringify({ ...JSON.parse(event(user.zitadelId, 1)), sequence });
        expectProblem(await post(body, sign(body)), 400, 'invalid_request');
      }
    });

    it('keeps the normal JSON handling of other routes', async () => {
      const res = await t.http({
        method: 'POST',
        url: '/api/users/login',
        payload: '{"email": ',
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'invalid_request');
    });
  });

  describe('changes made in the identity provider, as in the Zitadel console', () => {
    it('deactivation kills a live session token within 2 s, with no call to this API', async () => {
      const user = await signedInUser(t);
      expect((await me(user.token)).statusCode).toBe(200);

      const started = Date.now();
      await zitadel.deactivateUser(user.zitadelId);
      let status = 200;
      while (Date.now() - started < 5_000) {
        status = (await me(user.token)).statusCode;
        if (status === 401) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const elapsed = Date.now() - started;
      expect(status).toBe(401);
      expect(elapsed).toBeLessThan(2_000);

      expect((await local(user.zitadelId)).status).toBe('inactive');
      const [session] = await db.query<Array<{ status: string }>>(
        `SELECT status FROM sessions WHERE id = $1`,
        [user.sessionId],
      );
      expect(session.status).toBe('terminated');

      // Reactivated: the user may sign in again, but the ended session stays ended.
      await zitadel.reactivateUser(user.zitadelId);
      expect(
        await eventually(
          async () => (await local(user.zitadelId)).status,
          (s) => s === 'active',
        ),
      ).toBe('active');
      expect((await me(user.token)).statusCode).toBe(401);
    });

    it('lock blocks the user (inactive, sessions ended); unlock lets them back', async () => {
      const user = await signedInUser(t);
      await zitadel.lockUser(user.zitadelId);
      expect(
        await eventually(
          () => me(user.token).then((r) => r.statusCode),
          (s) => s === 401,
        ),
      ).toBe(401);
      expect((await local(user.zitadelId)).status).toBe('inactive');
      await zitadel.unlockUser(user.zitadelId);
      expect(
        await eventually(
          async () => (await local(user.zitadelId)).status,
          (s) => s === 'active',
        ),
      ).toBe('active');
    });

    it('removal marks the user deleted and ends the sessions', async () => {
      const user = await signedInUser(t);
      await zitadel.deleteUser(user.zitadelId);
      expect(
        await eventually(
          async () => (await local(user.zitadelId)).status,
          (s) => s === 'deleted',
        ),
      ).toBe('deleted');
      expect((await local(user.zitadelId)).deletedAt).not.toBeNull();
      expect((await me(user.token)).statusCode).toBe(401);
    });

    it('a user added in the console appears; profile, username and roles follow', async () => {
      const identity = await createIdentityUser(t);
      const created = await eventually(
        () => users.findByZitadelId(identity.zitadelId),
        (u) => u !== null,
      );
      expect(created).toMatchObject({ email: identity.email, status: 'active' });

      await zitadel.updateHumanUser(identity.zitadelId, { displayName: 'Renamed In Console' });
      expect(
        await eventually(
          async () => (await local(identity.zitadelId)).displayName,
          (d) => d === 'Renamed In Console',
        ),
      ).toBe('Renamed In Console');

      const username = `${identity.username}-renamed`;
      await zitadel.updateHumanUser(identity.zitadelId, { username });
      expect(
        await eventually(
          async () => (await local(identity.zitadelId)).username,
          (u) => u === username,
        ),
      ).toBe(username);

      await zitadel.setUserRoles(identity.zitadelId, ['manager']);
      expect(
        await eventually(
          async () => (await local(identity.zitadelId)).roles,
          (r) => r.includes('manager'),
        ),
      ).toEqual(['manager']);
      await zitadel.setUserRoles(identity.zitadelId, []);
      expect(
        await eventually(
          async () => (await local(identity.zitadelId)).roles,
          (r) => r[0] === 'user',
        ),
      ).toEqual(['user']);
    });

    it('email verification in the identity provider activates a pending user', async () => {
      const identity = await createIdentityUser(t, { emailVerified: false });
      expect(
        (
          await eventually(
            () => users.findByZitadelId(identity.zitadelId),
            (u) => u !== null,
          )
        )?.status,
      ).toBe('pending_verification');
      const code = await idp.lastEmailCode(identity.zitadelId);
      await zitadel.verifyEmail(identity.zitadelId, code!);
      expect(
        await eventually(
          async () => (await local(identity.zitadelId)).status,
          (s) => s === 'active',
        ),
      ).toBe('active');
    });

    it('a local suspension survives Zitadel events', async () => {
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      await db.query(`UPDATE users SET status = 'suspended' WHERE id = $1`, [user.userId]);
      await zitadel.updateHumanUser(user.zitadelId, { displayName: 'Still Suspended' });
      await settled(user.zitadelId);
      expect(await local(user.zitadelId)).toMatchObject({
        status: 'suspended',
        displayName: 'Still Suspended',
      });
    });
  });

  describe('replayed and out-of-order events', () => {
    it('a replayed or older event changes nothing; a newer one applies', async () => {
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      const applied = await appliedSequence(user.zitadelId);
      // Drift the row behind the service's back, so that any work done by an event would show.
      await db.query(`UPDATE users SET display_name = 'Drifted' WHERE id = $1`, [user.userId]);

      for (const sequence of [applied, applied - 1, 1]) {
        const body = event(user.zitadelId, sequence);
        expect((await post(body, sign(body))).statusCode).toBe(204);
      }
      expect((await local(user.zitadelId)).displayName).toBe('Drifted');
      expect(await appliedSequence(user.zitadelId)).toBe(applied);

      const newer = event(user.zitadelId, applied + 1);
      expect((await post(newer, sign(newer))).statusCode).toBe(204);
      expect((await local(user.zitadelId)).displayName).toBe(`Test ${user.username}`);
      expect(await appliedSequence(user.zitadelId)).toBe(applied + 1);
    });

    it('an old "reactivated" arriving after a deactivation leaves the user inactive', async () => {
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      const beforeDeactivation = await appliedSequence(user.zitadelId);
      await zitadel.deactivateUser(user.zitadelId);
      await settled(user.zitadelId);
      expect((await local(user.zitadelId)).status).toBe('inactive');

      const late = event(user.zitadelId, beforeDeactivation, 'user.reactivated');
      expect((await post(late, sign(late))).statusCode).toBe(204);
      // Even a newer event re-reads Zitadel's state rather than trusting its type: still inactive.
      const bogus = event(user.zitadelId, (await appliedSequence(user.zitadelId)) + 5, 'user.reactivated');
      expect((await post(bogus, sign(bogus))).statusCode).toBe(204);
      expect((await local(user.zitadelId)).status).toBe('inactive');
      expect((await me(user.token)).statusCode).toBe(401);
    });

    it('events delivered in reverse order end in the latest state', async () => {
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      // Stop live delivery, make two changes, then deliver their events newest first.
      idp.setEventTarget(null);
      try {
        await zitadel.updateHumanUser(user.zitadelId, { displayName: 'First Change' });
        const first = await remoteSequence(user.zitadelId);
        await zitadel.updateHumanUser(user.zitadelId, { displayName: 'Second Change' });
        const second = await remoteSequence(user.zitadelId);
        for (const sequence of [second, first]) {
          const body = event(user.zitadelId, sequence);
          expect((await post(body, sign(body))).statusCode).toBe(204);
        }
        expect((await local(user.zitadelId)).displayName).toBe('Second Change');
        expect(await appliedSequence(user.zitadelId)).toBe(second);
      } finally {
        idp.setEventTarget({ url: eventsUrl, signingKey: key });
      }
    });
    it("an admin's DELETE answers 200 when Zitadel's user.removed event is applied before it finishes", async () => {
      const admin = await signedInUser(t, { roles: ['admin'] });
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      const removedAt = (await remoteSequence(user.zitadelId)) + 1;
      const deleteUser = zitadel.deleteUser.bind(zitadel);
      // Zitadel's event overtakes the answer: the user is already deleted here when the DELETE applies.
      const spy = jest.spyOn(zitadel, 'deleteUser').mockImplementationOnce(async (zitadelId) => {
        await deleteUser(zitadelId);
        const body = event(zitadelId, removedAt, 'user.removed');
        expect((await post(body, sign(body))).statusCode).toBe(204);
        expect((await local(zitadelId)).status).toBe('deleted');
      });
      try {
        const res = await t.http({
          method: 'DELETE',
          url: `/api/users/${user.userId}`,
          headers: bearer(admin.token),
        });
        expect(res.statusCode).toBe(200);
      } finally {
        spy.mockRestore();
      }
      expect((await local(user.zitadelId)).status).toBe('deleted');
    });
  });

  describe('reconciliation', () => {
    // The databases are this file's own: no other spec file's pass holds the lock, every run here works.
    async function runOwn(reconciler: ZitadelReconciler): Promise<ReconcileResult> {
      const result = await reconciler.run();
      expect(result.skipped).toBe(false);
      return result;
    }
    /** A run that has taken the lock and entered listUsers (`inside`), still going (`done`). */
    async function startOwn(
      reconciler: ZitadelReconciler,
      inside: Promise<void>,
    ): Promise<{ done: Promise<ReconcileResult> }> {
      const run = reconciler.run();
      const first = await Promise.race([inside.then(() => null), run]);
      expect(first).toBeNull();
      return { done: run };
    }

    it('repairs rows changed behind the service and events it missed', async () => {
      const drifted = await signedInUser(t);
      const missed = await signedInUser(t);
      const gone = await signedInUser(t);
      await Promise.all([settled(drifted.zitadelId), settled(missed.zitadelId), settled(gone.zitadelId)]);

      await db.query(
        `UPDATE users SET display_name = 'Tampered', status = 'inactive', roles = '{admin}' WHERE id = $1`,
        [drifted.userId],
      );
      idp.setEventTarget(null);
      try {
        await zitadel.deactivateUser(missed.zitadelId);
        await zitadel.deleteUser(gone.zitadelId);
      } finally {
        idp.setEventTarget({ url: eventsUrl, signingKey: key });
      }
      expect((await local(missed.zitadelId)).status).toBe('active');
      expect((await me(missed.token)).statusCode).toBe(200);

      const result = await runOwn(t.app.get(ZitadelReconciler));
      expect(result.checked).toBeGreaterThanOrEqual(3);
      expect(result.fixed).toBeGreaterThanOrEqual(3);

      expect(await local(drifted.zitadelId)).toMatchObject({
        status: 'active',
        displayName: `Test ${drifted.username}`,
        roles: ['user'],
      });
      expect((await local(missed.zitadelId)).status).toBe('inactive');
      expect((await me(missed.token)).statusCode).toBe(401);
      expect((await local(gone.zitadelId)).status).toBe('deleted');
      expect((await me(gone.token)).statusCode).toBe(401);

      const metrics = await t.http({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/zitadel_reconcile_runs_total\{outcome="completed"\} [1-9]/);
      expect(metrics.body).toMatch(/zitadel_reconcile_users_fixed_total [1-9]/);
    });

    it('does not apply a listing older than a local write: a user activated after the page was read stays active', async () => {
      const user = await signedInUser(t);
      await settled(user.zitadelId);
      const zitadel = t.app.get(ZitadelClient);
      const listUsers = zitadel.listUsers.bind(zitadel);
      // The page says inactive, as it would have if it had been read just before an activation; while it
      // is "in flight", the user's row is written locally (here, their own profile update).
      const spy = jest.spyOn(zitadel, 'listUsers').mockImplementation(async (query) => {
        const page = await listUsers(query);
        if (!page.users.some((u) => u.userId === user.zitadelId)) return page;
        const updated = await t.http({
          method: 'PUT',
          url: `/api/users/${user.userId}`,
          headers: bearer(user.token),
          payload: { display_name: 'Written After The Listing' },
        });
        expect(updated.statusCode).toBe(200);
        return {
          ...page,
          users: page.users.map((u) =>
            u.userId === user.zitadelId ? { ...u, state: 'USER_STATE_INACTIVE' as const } : u,
          ),
        };
      });
      try {
        await runOwn(t.app.get(ZitadelReconciler));
      } finally {
        spy.mockRestore();
      }
      // Zitadel was asked again for this user: still active, and the session still works.
      expect((await local(user.zitadelId)).status).toBe('active');
      expect((await me(user.token)).statusCode).toBe(200);
    });

    it('skips while another instance holds the advisory lock', async () => {
      const other = db.createQueryRunner();
      await other.connect();
      try {
        await other.query('SELECT pg_advisory_lock(hashtext($1))', [RECONCILE_LOCK_KEY]);
        expect(await t.app.get(ZitadelReconciler).run()).toEqual({ skipped: true, checked: 0, fixed: 0 });
        await other.query('SELECT pg_advisory_unlock(hashtext($1))', [RECONCILE_LOCK_KEY]);
      } finally {
        await other.release();
      }
      // Released: a run may take the lock again.
      await runOwn(t.app.get(ZitadelReconciler));
    });

    it('two concurrent runs: one works, the other skips', async () => {
      const reconciler = t.app.get(ZitadelReconciler);
      const listUsers = zitadel.listUsers.bind(zitadel);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      // Hold the first run inside its work (lock taken) until the second has tried.
      const spy = jest.spyOn(zitadel, 'listUsers').mockImplementationOnce(async (page) => {
        entered();
        await gate;
        return listUsers(page);
      });
      try {
        const first = await startOwn(reconciler, inside);
        const second = await reconciler.run();
        release();
        expect(second).toEqual({ skipped: true, checked: 0, fixed: 0 });
        expect((await first.done).skipped).toBe(false);
      } finally {
        release();
        spy.mockRestore();
      }
      const metrics = await t.http({ method: 'GET', url: '/metrics' });
      expect(metrics.body).toMatch(/zitadel_reconcile_runs_total\{outcome="skipped"\} [1-9]/);
    });

    it('a second instance on the same database skips while the first one runs', async () => {
      const second = await startTestApp(env);
      const listUsers = zitadel.listUsers.bind(zitadel);
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const spy = jest.spyOn(zitadel, 'listUsers').mockImplementationOnce(async (page) => {
        entered();
        await gate;
        return listUsers(page);
      });
      try {
        const first = await startOwn(t.app.get(ZitadelReconciler), inside);
        expect(await second.app.get(ZitadelReconciler).run()).toEqual({
          skipped: true,
          checked: 0,
          fixed: 0,
        });
        release();
        expect((await first.done).skipped).toBe(false);
        // Once the first is done, the other instance runs.
        expect((await runOwn(second.app.get(ZitadelReconciler))).skipped).toBe(false);
      } finally {
        release();
        spy.mockRestore();
        await second.close();
      }
    });
  });
});
