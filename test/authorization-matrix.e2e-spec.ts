import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SessionsService } from '../src/sessions/sessions.service.js';
import { bearer, newSession, setLocalStatus, signedInUser, type SignedInUser } from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

type Actor =
  'anonymous' | 'self' | 'other user' | 'admin' | 'suspended user' | 'terminated session' | 'expired token';

interface Route {
  name: string;
  request: (
    targetId: string,
    targetSessionId: string,
  ) => {
    method: 'GET' | 'POST' | 'PUT' | 'DELETE';
    url: string;
    payload?: string | Buffer | Record<string, unknown>;
    headers?: Record<string, string>;
  };
  /** Expected status per actor, in the order of ACTORS. */
  expect: Record<Actor, number>;
}

const ACTORS: Actor[] = [
  'anonymous',
  'self',
  'other user',
  'admin',
  'suspended user',
  'terminated session',
  'expired token',
];

const denied = {
  anonymous: 401,
  'suspended user': 401,
  'terminated session': 401,
  'expired token': 401,
} as const;

/** Every authenticated route of the identity issue. Public routes are covered by their own flow tests. */
const ROUTES: Route[] = [
  {
    name: 'GET /api/users/me',
    request: () => ({ method: 'GET', url: '/api/users/me' }),
    expect: { ...denied, self: 200, 'other user': 200, admin: 200 },
  },
  {
    name: 'POST /api/users/logout',
    request: () => ({ method: 'POST', url: '/api/users/logout' }),
    expect: { ...denied, self: 200, 'other user': 200, admin: 200 },
  },
  {
    name: 'GET /api/users/:id/sessions',
    request: (id) => ({ method: 'GET', url: `/api/users/${id}/sessions` }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
  {
    name: 'DELETE /api/users/:id/sessions/:session_id',
    request: (id, sessionId) => ({ method: 'DELETE', url: `/api/users/${id}/sessions/${sessionId}` }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
  {
    name: 'DELETE /api/users/:id/sessions',
    request: (id) => ({ method: 'DELETE', url: `/api/users/${id}/sessions` }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
  {
    name: 'GET /api/users/:id/settings',
    request: (id) => ({ method: 'GET', url: `/api/users/${id}/settings` }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
  {
    name: 'PUT /api/users/:id/settings',
    request: (id) => ({ method: 'PUT', url: `/api/users/${id}/settings`, payload: { theme: 'dark' } }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
  {
    // Avatars are shown to everyone in a chat: any authenticated user may fetch one (the target has one).
    name: 'GET /api/users/:id/avatar',
    request: (id) => ({ method: 'GET', url: `/api/users/${id}/avatar` }),
    expect: { ...denied, self: 200, 'other user': 200, admin: 200 },
  },
  {
    name: 'PUT /api/users/:id/avatar',
    request: (id) => ({
      method: 'PUT',
      url: `/api/users/${id}/avatar`,
      payload: PNG,
      headers: { 'content-type': 'image/png' },
    }),
    expect: { ...denied, self: 200, 'other user': 403, admin: 200 },
  },
];

describe('authorization matrix (identity routes)', () => {
  let t: TestApp;
  let target: SignedInUser;
  let other: SignedInUser;
  let admin: SignedInUser;
  let suspended: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    [target, other, admin, suspended] = await Promise.all([
      signedInUser(t),
      signedInUser(t),
      signedInUser(t, { roles: ['admin'] }),
      signedInUser(t),
    ]);
    await setLocalStatus(t, suspended.userId, 'suspended');
    const upload = await t.http({
      method: 'PUT',
      url: `/api/users/${target.userId}/avatar`,
      headers: { ...bearer(target.token), 'content-type': 'image/png' },
      payload: PNG,
    });
    expect(upload.statusCode).toBe(200);
  });
  afterAll(() => t.close());

  /** A fresh credential for each case, since several routes end sessions. */
  async function headersFor(actor: Actor): Promise<Record<string, string>> {
    switch (actor) {
      case 'anonymous':
        return {};
      case 'self':
        return bearer((await newSession(t, target.userId)).token);
      case 'other user':
        return bearer((await newSession(t, other.userId)).token);
      case 'admin':
        return bearer((await newSession(t, admin.userId)).token);
      case 'suspended user':
        return bearer((await newSession(t, suspended.userId)).token);
      case 'terminated session': {
        const session = await newSession(t, target.userId);
        await t.app.get(SessionsService).terminate(target.userId, session.sessionId);
        return bearer(session.token);
      }
      case 'expired token':
        return bearer((await newSession(t, target.userId, new Date(Date.now() - 1000))).token);
    }
  }

  const cases = ROUTES.flatMap((route) => ACTORS.map((actor) => [route.name, actor, route] as const));

  it.each(cases)('%s as %s', async (_name, actor, route) => {
    const headers = await headersFor(actor);
    const victimSession = await newSession(t, target.userId);
    const request = route.request(target.userId, victimSession.sessionId);
    const res = await t.http({ ...request, headers: { ...request.headers, ...headers } });
    expect({ actor, status: res.statusCode }).toEqual({ actor, status: route.expect[actor] });
    if (res.statusCode >= 400) expect(res.headers['content-type']).toContain('application/problem+json');
  });
});
