import { RouteConfig } from '@nestjs/platform-fastify';
import { FASTIFY_ROUTE_CONFIG_METADATA } from '@nestjs/platform-fastify/constants.js';

/**
 * Nest's RouteConfig, adding keys to a route's Fastify `config` instead of replacing it: several of this
 * service's decorators (JsonBodyLimit, WritesNoCachedRows) each set one key, and a route may carry both.
 */
export const AddRouteConfig =
  (entries: Record<string, unknown>): MethodDecorator =>
  (target, key, descriptor) => {
    const current = Reflect.getMetadata(FASTIFY_ROUTE_CONFIG_METADATA, descriptor.value as object) as
      Record<string, unknown> | undefined;
    return RouteConfig({ ...current, ...entries })(target, key, descriptor);
  };

/** A route's Fastify `config` (what AddRouteConfig set), read in hooks. */
export const routeConfigOf = (request: { routeOptions: { config?: unknown } }): Record<string, unknown> =>
  (request.routeOptions.config ?? {}) as Record<string, unknown>;
