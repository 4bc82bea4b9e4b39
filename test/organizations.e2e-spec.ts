import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { SessionTokenService } from '../src/auth/session-token.service.js';
import { SessionsService } from '../src/sessions/sessions.service.js';
import { UsersService } from '../src/users/users.service.js';
import { ZitadelReconciler } from '../src/zitadel-sync/zitadel-reconciler.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import {
  bearer,
  createOrganization,
  signedInUser,
  strongPassword,
  uniqueName,
  type SignedInUser,
} from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** Issue 19: organizations scope what an admin sees and changes; roles per bot reach the bot runtime. */
describe('organizations and bot roles', () => {
  let t: TestApp;
  let homeOrg: string;
  let otherOrg: string;
  /** An admin of the configured organization, one of another, and an instance-wide admin. */
  let homeAdmin: SignedInUser;
  let otherAdmin: SignedInUser;
  let instanceAdmin: SignedInUser;
  let homeUser: SignedInUser;
  let otherUser: SignedInUser;
  /** A term only this run's users carry in their username. */
  const tag = uniqueName('orgs').replace(/[^a-z0-9]/g, '');

  const orgOf = async (userId: string) =>
    (
      await t.app
        .get(DataSource)
        .query<{ org_id: string }[]>('SELECT org_id FROM users WHERE id = $1', [userId])
    )[0]?.org_id;

  const get = (token: string, url: string) => t.http({ method: 'GET', url, headers: bearer(token) });

  beforeAll(async () => {
    t = await startTestApp();
    otherOrg = await createOrganization(t);
    [homeAdmin, otherAdmin, instanceAdmin] = await Promise.all([
      signedInUser(t, { roles: ['admin'] }),
      signedInUser(t, { roles: ['admin'], orgId: otherOrg }),
      signedInUser(t, { roles: ['iam_admin'] }),
    ]);
    homeOrg = (await orgOf(homeAdmin.userId))!;
    // Users whose usernames carry the tag, one in each organization, made by their organization's admin.
    const create = async (admin: SignedInUser) => {
      const username = `${tag}${uniqueName('m').replace(/[^a-z0-9]/g, '')}`;
      const password = strongPassword();
      const res = await t.http({
        method: 'POST',
        url: '/api/users',
        headers: bearer(admin.token),
        payload: { email: `${username}@example.test`, username, display_name: 'Member', password },
      });
      expect(res.statusCode).toBe(201);
      const login = await t.http({
        method: 'POST',
        url: '/api/users/login',
        payload: { email: `${username}@example.test`, password },
      });
      expect(login.statusCode).toBe(200);
      const { user_id, session_token } = login.json<{ user_id: string; session_token: string }>();
      return { userId: user_id, token: session_token } as SignedInUser;
    };
    [homeUser, otherUser] = await Promise.all([create(homeAdmin), create(otherAdmin)]);
  });
  afterAll(() => t.close());

  describe('users belong to an organization', () => {
    it('records the organization at login and at admin create (the creator’s own)', async () => {
      expect(homeOrg).toBe(t.app.get(UsersService).defaultOrgId);
      expect(await orgOf(otherAdmin.userId)).toBe(otherOrg);
      expect(await orgOf(homeUser.userId)).toBe(homeOrg);
      expect(await orgOf(otherUser.userId)).toBe(otherOrg);
      const detail = await get(otherAdmin.token, `/api/users/${otherUser.userId}`);
      expect(detail.json()).toMatchObject({ user_id: otherUser.userId, org_id: otherOrg });
    });

    it('lets only an instance-wide caller create a user in another organization', async () => {
      const username = uniqueName('cross');
      const body = { email: `${username}@example.test`, username, display_name: 'Cross', org_id: otherOrg };
      const refused = await t.http({
        method: 'POST',
        url: '/api/users',
        headers: bearer(homeAdmin.token),
        payload: body,
      });
      expectProblem(refused, 403, 'forbidden');
      const created = await t.http({
        method: 'POST',
        url: '/api/users',
        headers: bearer(instanceAdmin.token),
        payload: { ...body, roles: ['manager'] },
      });
      expect(created.statusCode).toBe(201);
      const { user_id, zitadel_id } = created.json<{ user_id: string; zitadel_id: string }>();
      expect(await orgOf(user_id)).toBe(otherOrg);
      // The role grant lives in the user's organization.
      expect(await t.app.get(ZitadelClient).getUserRoles(zitadel_id, otherOrg)).toEqual(['manager']);
    });

    it('refuses an organization admin granting a role that carries an instance-wide permission', async () => {
      const res = await t.http({
        method: 'PUT',
        url: `/api/users/${homeUser.userId}`,
        headers: bearer(homeAdmin.token),
        payload: { roles: ['iam_admin'] },
      });
      expectProblem(res, 403, 'forbidden');
    });

    it('gives no instance-wide permission to an instance role held in another organization', async () => {
      const pretender = await signedInUser(t, { roles: ['iam_admin'], orgId: otherOrg });
      const res = await get(pretender.token, `/api/users/${homeUser.userId}`);
      expectProblem(res, 404, 'user_not_found');
      const list = await get(pretender.token, `/api/users?search=${tag}&limit=100`);
      expect(list.json<{ users: { user_id: string }[] }>().users.map((u) => u.user_id)).toEqual([
        otherUser.userId,
      ]);
    });
  });

  describe('lists and searches', () => {
    const ids = (res: { json: <T>() => T }) =>
      res
        .json<{ users: { user_id: string }[] }>()
        .users.map((u) => u.user_id)
        .sort();

    it('shows, searches and counts only the caller’s organization', async () => {
      const home = await get(homeAdmin.token, `/api/users?search=${tag}&limit=100`);
      expect({ ids: ids(home), total: home.json<{ total: number }>().total }).toEqual({
        ids: [homeUser.userId],
        total: 1,
      });
      const other = await get(otherAdmin.token, `/api/users?search=${tag}&limit=100`);
      expect({ ids: ids(other), total: other.json<{ total: number }>().total }).toEqual({
        ids: [otherUser.userId],
        total: 1,
      });
      // Without a search the total comes from the per-organization counters.
      const [{ n }] = await t.app
        .get(DataSource)
        .query<{ n: number }[]>(
          `SELECT count(*)::int AS n FROM users WHERE org_id = $1 AND status <> 'deleted'`,
          [otherOrg],
        );
      expect((await get(otherAdmin.token, '/api/users?limit=1')).json()).toMatchObject({ total: n });
    });

    it('shows every organization to an instance-wide caller, or the one org_id names', async () => {
      const all = await get(instanceAdmin.token, `/api/users?search=${tag}&limit=100`);
      expect(ids(all)).toEqual([homeUser.userId, otherUser.userId].sort());
      const one = await get(instanceAdmin.token, `/api/users?search=${tag}&org_id=${otherOrg}`);
      expect(ids(one)).toEqual([otherUser.userId]);
    });

    it('refuses org_id naming another organization to an organization admin; its own is fine', async () => {
      expectProblem(await get(homeAdmin.token, `/api/users?org_id=${otherOrg}`), 403, 'forbidden');
      expect((await get(homeAdmin.token, `/api/users?search=${tag}&org_id=${homeOrg}`)).statusCode).toBe(200);
      expectProblem(await get(homeAdmin.token, '/api/users?org_id=abc'), 422, 'validation_error');
    });
  });

  describe('roles per bot', () => {
    const bot = `bot-${tag}`.slice(0, 64);
    const putRoles = (token: string, userId: string, roles: unknown, botId = bot) =>
      t.http({
        method: 'PUT',
        url: `/api/users/${userId}/bots/${botId}/roles`,
        headers: bearer(token),
        payload: { roles },
      });
    /** A session opened for the bot, as a bot server's login would open it. */
    const botSession = async (userId: string, botId = bot) => {
      const expiresAt = new Date(Date.now() + 3_600_000);
      const session = await t.app.get(SessionsService).create({
        userId,
        expiresAt,
        authMethod: 'password',
        deviceInfo: null,
        ipAddress: null,
        botId,
      });
      return t.app.get(SessionTokenService).sign({ userId, sessionId: session.id, expiresAt });
    };
    const variables = async (token: string) =>
      (await get(token, '/api/users/me/variables')).json<{ role: string; roles: string[] }>();

    it('are granted, listed, seen by that bot’s sessions on the next request, audited, and revoked', async () => {
      const inBot = await botSession(homeUser.userId);
      const elsewhere = await botSession(homeUser.userId, `${bot}-x`.slice(0, 64));
      expect(await variables(inBot)).toMatchObject({ role: 'user', roles: ['user'] });

      const set = await putRoles(homeAdmin.token, homeUser.userId, ['support', 'manager']);
      expect(set.statusCode).toBe(200);
      expect(set.json()).toMatchObject({
        user_id: homeUser.userId,
        bot_id: bot,
        roles: ['manager', 'support'],
      });
      expect(await variables(inBot)).toMatchObject({ role: 'manager', roles: ['manager', 'support'] });
      // Other bots, and sessions of no bot, keep the organization roles.
      expect(await variables(elsewhere)).toMatchObject({ role: 'user', roles: ['user'] });
      expect(await variables(homeUser.token)).toMatchObject({ role: 'user', roles: ['user'] });
      // Bot roles grant no API permission.
      expectProblem(await get(inBot, `/api/users?limit=1`), 403, 'forbidden');

      const listed = await get(homeUser.token, `/api/users/${homeUser.userId}/bots`);
      expect(listed.json()).toMatchObject({
        user_id: homeUser.userId,
        bots: [{ bot_id: bot, roles: ['manager', 'support'] }],
      });
      // The admin variant of the variables answers the same for that bot.
      const asAdmin = await get(homeAdmin.token, `/api/users/${homeUser.userId}/variables?bot_id=${bot}`);
      expect(asAdmin.json()).toMatchObject({ role: 'manager' });

      const removed = await t.http({
        method: 'DELETE',
        url: `/api/users/${homeUser.userId}/bots/${bot}/roles`,
        headers: bearer(homeAdmin.token),
      });
      expect(removed.json()).toEqual({ user_id: homeUser.userId, bot_id: bot, status: 'removed' });
      expect(await variables(inBot)).toMatchObject({ role: 'user', roles: ['user'] });
      const again = await t.http({
        method: 'DELETE',
        url: `/api/users/${homeUser.userId}/bots/${bot}/roles`,
        headers: bearer(homeAdmin.token),
      });
      expectProblem(again, 404, 'not_found');

      const audit = await get(homeAdmin.token, `/api/users/${homeUser.userId}/audit`);
      const events = audit
        .json<{ events: { action: string; changes: Record<string, unknown> }[] }>()
        .events.filter((e) => e.action === 'user.bot_roles_changed');
      expect(events.map((e) => e.changes)).toEqual([
        { [`bots.${bot}.roles`]: { before: ['manager', 'support'], after: null } },
        { [`bots.${bot}.roles`]: { before: null, after: ['manager', 'support'] } },
      ]);
    });

    it('filters the list by a role as held in a bot', async () => {
      await putRoles(homeAdmin.token, homeUser.userId, ['manager']);
      const byBot = await get(homeAdmin.token, `/api/users?search=${tag}&role=manager&bot_id=${bot}`);
      expect(byBot.json<{ users: { user_id: string }[] }>().users.map((u) => u.user_id)).toEqual([
        homeUser.userId,
      ]);
      // Elsewhere the organization roles count: the user is no manager there.
      const plain = await get(homeAdmin.token, `/api/users?search=${tag}&role=manager`);
      expect(plain.json()).toMatchObject({ users: [], total: 0 });
      // A user without bot roles matches by the organization roles.
      const users = await get(homeAdmin.token, `/api/users?search=${tag}&role=user&bot_id=${bot}`);
      expect(users.json()).toMatchObject({ users: [], total: 0 });
      const holders = await get(homeAdmin.token, `/api/users?search=${tag}&bot_id=${bot}`);
      expect(holders.json()).toMatchObject({ users: [{ user_id: homeUser.userId }], total: 1 });
    });

    it('refuses bad input with 4xx, and another organization’s user with 404', async () => {
      expectProblem(await putRoles(homeAdmin.token, homeUser.userId, []), 422, 'validation_error');
      expectProblem(await putRoles(homeAdmin.token, homeUser.userId, ['a b']), 422, 'validation_error');
      expectProblem(
        await putRoles(homeAdmin.token, homeUser.userId, ['x'], 'Bad Bot'),
        400,
        'invalid_request',
      );
      expectProblem(await putRoles(otherAdmin.token, homeUser.userId, ['x']), 404, 'user_not_found');
      expectProblem(await putRoles(homeUser.token, homeUser.userId, ['admin']), 403, 'forbidden');
      expect((await putRoles(instanceAdmin.token, otherUser.userId, ['x'])).statusCode).toBe(200);
    });
  });

  describe('reconciliation', () => {
    it('brings a drifted organization back', async () => {
      const db = t.app.get(DataSource);
      await db.query(`UPDATE users SET org_id = $2 WHERE id = $1`, [otherUser.userId, homeOrg]);
      try {
        // Other spec files run reconciliation against the same database: wait for the lock to be free.
        while ((await t.app.get(ZitadelReconciler).run()).skipped) await sleep(250);
        expect(await orgOf(otherUser.userId)).toBe(otherOrg);
      } finally {
        await db.query(`UPDATE users SET org_id = $2 WHERE id = $1`, [otherUser.userId, otherOrg]);
      }
    });
  });
});
