import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Access } from '../src/common/access.js';
import { collectRoutes } from './support/routes.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Every route of the application with its declared access. A new route must be added here, so that who
 * may call it is a reviewed decision; a route with no declaration at all fails the second test.
 */
const EXPECTED: Record<string, Access | undefined> = {
  'GET /health/live': 'public',
  'GET /health/ready': 'public',
  'GET /metrics': 'public',
  'POST /api/users/login': 'public',
  'GET /api/users/login/callback': 'public',
  'POST /api/users/logout': 'authenticated',
  'POST /api/users/register': 'public',
  'POST /api/users/verify-email': 'public',
  'GET /api/users/me': 'authenticated',
  'GET /api/users/me/variables': 'authenticated',
  'GET /api/users/:id/variables': { selfOr: 'admin:users' },
  'GET /api/users': { permission: 'admin:users' },
  'POST /api/users': { permission: 'admin:users' },
  'GET /api/users/:id': { selfOr: 'admin:users' },
  'PUT /api/users/:id': { selfOr: 'admin:users' },
  'DELETE /api/users/:id': { permission: 'admin:users' },
  'POST /api/users/:id/suspend': { permission: 'admin:users' },
  'POST /api/users/:id/activate': { permission: 'admin:users' },
  'GET /api/users/:id/audit': { permission: 'admin:users' },
  'GET /api/users/:id/sessions': { selfOr: 'admin:users' },
  'DELETE /api/users/:id/sessions/:session_id': { selfOr: 'admin:users' },
  'DELETE /api/users/:id/sessions': { selfOr: 'admin:users' },
  'GET /api/users/:id/settings': { selfOr: 'admin:users' },
  'PUT /api/users/:id/settings': { selfOr: 'admin:users' },
  'GET /api/users/:id/avatar': 'authenticated',
  'PUT /api/users/:id/avatar': { selfOr: 'admin:users' },
  'GET /api/users/:id/bots': { selfOr: 'admin:users' },
  'PUT /api/users/:id/bots/:bot_id/roles': { permission: 'admin:users' },
  'DELETE /api/users/:id/bots/:bot_id/roles': { permission: 'admin:users' },
  'POST /api/zitadel/events': 'public',
};

describe('route access declarations', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('lists every route with exactly the reviewed access', () => {
    expect(collectRoutes(t)).toEqual(EXPECTED);
  });

  it('leaves no route without a declaration', () => {
    const undeclared = Object.entries(collectRoutes(t)).filter(([, access]) => access === undefined);
    expect(undeclared).toEqual([]);
  });
});
