import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ModulesContainer } from '@nestjs/core';
import { ACCESS_METADATA, type Access } from '../src/common/access.js';
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
  'GET /api/users/:id/sessions': { selfOr: 'admin:users' },
  'DELETE /api/users/:id/sessions/:session_id': { selfOr: 'admin:users' },
  'DELETE /api/users/:id/sessions': { selfOr: 'admin:users' },
  'POST /api/zitadel/events': 'public',
};

function collectRoutes(t: TestApp): Record<string, Access | undefined> {
  const routes: Record<string, Access | undefined> = {};
  for (const module of t.app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as { prototype: Record<string, unknown> } | null;
      if (!controller) continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, controller) ?? '');
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = controller.prototype[name];
        if (name === 'constructor' || typeof handler !== 'function') continue;
        const path = Reflect.getMetadata(PATH_METADATA, handler) as string | undefined;
        if (path === undefined) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod];
        const full = `/${[base, path]
          .map((p) => p.replace(/^\/|\/$/g, ''))
          .filter(Boolean)
          .join('/')}`;
        routes[`${method} ${full}`] =
          (Reflect.getMetadata(ACCESS_METADATA, handler) as Access | undefined) ??
          (Reflect.getMetadata(ACCESS_METADATA, controller) as Access | undefined);
      }
    }
  }
  return routes;
}

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
