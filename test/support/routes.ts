import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { ModulesContainer } from '@nestjs/core';
import { ACCESS_METADATA, type Access } from '../../src/common/access.js';
import type { TestApp } from './test-app.js';

/** Every route of the running application (`GET /api/users/:id`) with the access it declares. */
export function collectRoutes(t: TestApp): Record<string, Access | undefined> {
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
