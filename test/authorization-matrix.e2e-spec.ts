import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { SessionsService } from '../src/sessions/sessions.service.js';
import {
  bearer,
  createOrganization,
  newSession,
  setLocalStatus,
  signedInUser,
  strongPassword,
  uniqueName,
  type SignedInUser,
} from './support/identity.js';
import { collectRoutes } from './support/routes.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

type Actor =
  | 'anonymous'
  | 'self'
  | 'other user'
  | 'admin'
  | 'instance admin'
  | 'admin of another organization'
  | 'user of another organization'
  | 'suspended user'
  | 'deleted user'
  | 'terminated session'
  | 'expired token';

const ACTORS: Actor[] = [
  'anonymous',
  'self',
  'other user',
  'admin',
  'instance admin',
  'admin of another organization',
  'user of another organization',
  'suspended user',
  'deleted user',
  'terminated session',
  'expired token',
];

interface Target {
  userId: string;
  sessionId: string;
}

interface Route {
  name: string;
  request: (target: Target) => {
    method: 'GET' | 'POST' | 'PUT' | 'DELETE';
    url: string;
    payload?: object | Buffer;
    headers?: Record<string, string>;
  };
  /** Routes that change the target's state get a new target for every case. */
  freshTarget?: 'active' | 'suspended';
  /** What the target needs before the request (e.g. bot roles to remove). */
  prepare?: (t: TestApp, target: Target) => Promise<void>;
  /**
   * The organization callers: an `iam:users` admin answers as an admin; for the two callers of another
   * organization, a route naming a user (`:id`) answers 404 (that user does not exist for them), any
   * other route as for an admin or a user of the target's organization.
   */
  expect: Record<Exclude<Actor, OrganizationActor>, number>;
}

type OrganizationActor = 'instance admin' | 'admin of another organization' | 'user of another organization';

function expectedStatus(route: Route, actor: Actor): number {
  const namesUser = route.name.includes(':id');
  if (actor === 'instance admin') return route.expect.admin;
  if (actor === 'admin of another organization') return namesUser ? 404 : route.expect.admin;
  if (actor === 'user of another organization') return namesUser ? 404 : route.expect['other user'];
  return route.expect[actor];
}

const BOT = 'matrix-bot';

/** Whatever the route, these callers never get past authentication. */
const denied = {
  anonymous: 401,
  'suspended user': 401,
  'deleted user': 401,
  'terminated session': 401,
  'expired token': 401,
} as const;
const selfOrAdmin = (ok: number) => ({ ...denied, self: ok, 'other user': 403, admin: ok });
const adminOnly = (ok: number) => ({ ...denied, self: 403, 'other user': 403, admin: ok });
const anyone = (ok: number) => ({ ...denied, self: ok, 'other user': ok, admin: ok });

/** Every authenticated route of the application. Public routes are covered by their own flow tests. */
const ROUTES: Route[] = [
  {
    name: 'GET /api/users/me',
    request: () => ({ method: 'GET', url: '/api/users/me' }),
    expect: anyone(200),
  },
  {
    name: 'GET /api/users/me/variables',
    request: () => ({ method: 'GET', url: '/api/users/me/variables' }),
    expect: anyone(200),
  },
  {
    name: 'GET /api/users/:id/variables',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/variables` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'POST /api/users/logout',
    request: () => ({ method: 'POST', url: '/api/users/logout' }),
    expect: anyone(200),
  },
  {
    name: 'GET /api/users',
    request: () => ({ method: 'GET', url: '/api/users?limit=1' }),
    expect: adminOnly(200),
  },
  {
    name: 'POST /api/users',
    request: () => {
      const username = uniqueName('matrix');
      return {
        method: 'POST',
        url: '/api/users',
        payload: {
          email: `${username}@example.test`,
          username,
          display_name: 'M',
          password: strongPassword(),
        },
      };
    },
    expect: adminOnly(201),
  },
  {
    name: 'GET /api/users/:id',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'PUT /api/users/:id',
    request: (t) => ({
      method: 'PUT',
      url: `/api/users/${t.userId}`,
      payload: { display_name: uniqueName('name') },
    }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'DELETE /api/users/:id',
    request: (t) => ({ method: 'DELETE', url: `/api/users/${t.userId}` }),
    freshTarget: 'active',
    expect: adminOnly(200),
  },
  {
    name: 'POST /api/users/:id/suspend',
    request: (t) => ({
      method: 'POST',
      url: `/api/users/${t.userId}/suspend`,
      payload: { reason: 'matrix' },
    }),
    freshTarget: 'active',
    expect: adminOnly(200),
  },
  {
    name: 'POST /api/users/:id/activate',
    request: (t) => ({ method: 'POST', url: `/api/users/${t.userId}/activate` }),
    freshTarget: 'suspended',
    // The suspended target's own tokens are dead, so "self" is refused at authentication.
    expect: { ...adminOnly(200), self: 401 },
  },
  {
    name: 'GET /api/users/:id/audit',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/audit` }),
    expect: adminOnly(200),
  },
  {
    name: 'GET /api/users/:id/sessions',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/sessions` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'DELETE /api/users/:id/sessions/:session_id',
    request: (t) => ({ method: 'DELETE', url: `/api/users/${t.userId}/sessions/${t.sessionId}` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'DELETE /api/users/:id/sessions',
    request: (t) => ({ method: 'DELETE', url: `/api/users/${t.userId}/sessions` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'GET /api/users/:id/settings',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/settings` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'PUT /api/users/:id/settings',
    request: (t) => ({ method: 'PUT', url: `/api/users/${t.userId}/settings`, payload: { theme: 'dark' } }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'GET /api/users/:id/bots',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/bots` }),
    expect: selfOrAdmin(200),
  },
  {
    name: 'PUT /api/users/:id/bots/:bot_id/roles',
    request: (t) => ({
      method: 'PUT',
      url: `/api/users/${t.userId}/bots/${BOT}/roles`,
      payload: { roles: ['manager'] },
    }),
    expect: adminOnly(200),
  },
  {
    name: 'DELETE /api/users/:id/bots/:bot_id/roles',
    request: (t) => ({ method: 'DELETE', url: `/api/users/${t.userId}/bots/${BOT}/roles` }),
    freshTarget: 'active',
    prepare: async (t, target) => {
      await t.app
        .get(DataSource)
        .query(`INSERT INTO user_bot_roles (user_id, bot_id, roles) VALUES ($1, $2, ARRAY['manager'])`, [
          target.userId,
          BOT,
        ]);
    },
    expect: adminOnly(200),
  },
  {
    // Avatars are shown to everyone in a chat: any authenticated user may fetch one (the target has one).
    name: 'GET /api/users/:id/avatar',
    request: (t) => ({ method: 'GET', url: `/api/users/${t.userId}/avatar` }),
    expect: anyone(200),
  },
  {
    name: 'PUT /api/users/:id/avatar',
    request: (t) => ({
      method: 'PUT',
      url: `/api/users/${t.userId}/avatar`,
      payload: PNG,
      headers: { 'content-type': 'image/png' },
    }),
    expect: selfOrAdmin(200),
  },
];

describe('authorization matrix', () => {
  let t: TestApp;
  let target: SignedInUser;
  let other: SignedInUser;
  let admin: SignedInUser;
  let instanceAdmin: SignedInUser;
  let foreignAdmin: SignedInUser;
  let foreignUser: SignedInUser;
  let suspended: SignedInUser;
  let deleted: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    const otherOrg = await createOrganization(t);
    [target, other, admin, instanceAdmin, foreignAdmin, foreignUser, suspended, deleted] = await Promise.all([
      signedInUser(t),
      signedInUser(t),
      signedInUser(t, { roles: ['admin'] }),
      signedInUser(t, { roles: ['iam_admin'] }),
      signedInUser(t, { roles: ['admin'], orgId: otherOrg }),
      signedInUser(t, { orgId: otherOrg }),
      signedInUser(t),
      signedInUser(t),
    ]);
    // Only the status changes here (not the sessions), so the token check itself must refuse them.
    await setLocalStatus(t, suspended.userId, 'suspended');
    await setLocalStatus(t, deleted.userId, 'deleted');
    const upload = await t.http({
      method: 'PUT',
      url: `/api/users/${target.userId}/avatar`,
      headers: { ...bearer(target.token), 'content-type': 'image/png' },
      payload: PNG,
    });
    expect(upload.statusCode).toBe(200);
  });
  afterAll(() => t.close());

  async function targetFor(route: Route): Promise<SignedInUser> {
    if (!route.freshTarget) return target;
    const fresh = await signedInUser(t);
    if (route.freshTarget === 'suspended') await setLocalStatus(t, fresh.userId, 'suspended');
    return fresh;
  }

  /** A fresh credential for each case, since several routes end sessions. */
  async function headersFor(actor: Actor, self: SignedInUser): Promise<Record<string, string>> {
    switch (actor) {
      case 'anonymous':
        return {};
      case 'self':
        return bearer((await newSession(t, self.userId)).token);
      case 'other user':
        return bearer((await newSession(t, other.userId)).token);
      case 'admin':
        return bearer((await newSession(t, admin.userId)).token);
      case 'instance admin':
        return bearer((await newSession(t, instanceAdmin.userId)).token);
      case 'admin of another organization':
        return bearer((await newSession(t, foreignAdmin.userId)).token);
      case 'user of another organization':
        return bearer((await newSession(t, foreignUser.userId)).token);
      case 'suspended user':
        return bearer((await newSession(t, suspended.userId)).token);
      case 'deleted user':
        return bearer((await newSession(t, deleted.userId)).token);
      case 'terminated session': {
        const session = await newSession(t, self.userId);
        await t.app.get(SessionsService).terminate(self.userId, session.sessionId);
        return bearer(session.token);
      }
      case 'expired token':
        return bearer((await newSession(t, self.userId, new Date(Date.now() - 1000))).token);
    }
  }

  const cases = ROUTES.flatMap((route) => ACTORS.map((actor) => [route.name, actor, route] as const));

  it.each(cases)('%s as %s', async (_name, actor, route) => {
    const subject = await targetFor(route);
    const headers = await headersFor(actor, subject);
    const victimSession = await newSession(t, subject.userId);
    const target = { userId: subject.userId, sessionId: victimSession.sessionId };
    await route.prepare?.(t, target);
    const request = route.request(target);
    const res = await t.http({ ...request, headers: { ...request.headers, ...headers } });
    expect({ actor, status: res.statusCode }).toEqual({ actor, status: expectedStatus(route, actor) });
    if (res.statusCode >= 400) expect(res.headers['content-type']).toContain('application/problem+json');
    // Another organization's user does not exist: the same answer as for an unknown id.
    if (res.statusCode === 404) expect(res.json()).toMatchObject({ error: 'user_not_found' });
  });

  it('covers every authenticated route the application has', () => {
    const authenticated = Object.entries(collectRoutes(t))
      .filter(([, access]) => access !== 'public')
      .map(([name]) => name)
      .sort();
    expect(ROUTES.map((r) => r.name).sort()).toEqual(authenticated);
  });
});
