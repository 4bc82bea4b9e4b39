import type { ConnectRouter, Interceptor } from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import { OrganizationService } from '@zitadel/proto/zitadel/org/v2/org_service_pb.js';
import { SessionService } from '@zitadel/proto/zitadel/session/v2/session_service_pb.js';
import { SettingsService } from '@zitadel/proto/zitadel/settings/v2/settings_service_pb.js';
import { UserService } from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import type { FastifyInstance } from 'fastify';
import { authorizationService, organizationService } from './authorization-service.js';
import type { IdpContext } from './context.js';
import { sameSecret } from './credentials.js';
import { unauthenticated } from './errors.js';
import { sessionService, settingsService } from './session-service.js';
import { userService } from './user-service.js';

/**
 * Zitadel's services over Connect (`POST /<package>.<Service>/<Method>`; Connect, gRPC or gRPC-web, JSON or
 * binary), implemented on the service descriptors of `@zitadel/proto`: each implementation is a
 * `ServiceImpl<typeof Service>`, so the compiler checks every request it reads and every answer it builds
 * against Zitadel's own messages, as it checks the service's client against the same descriptors. Methods
 * not implemented answer Unimplemented.
 */
export function registerConnectServices(app: FastifyInstance, ctx: IdpContext): void {
  void app.register(fastifyConnectPlugin, {
    interceptors: [requireServiceAccount(ctx)],
    routes: (router: ConnectRouter) => {
      router.service(UserService, userService(ctx));
      router.service(SessionService, sessionService(ctx));
      router.service(SettingsService, settingsService(ctx));
      router.service(OrganizationService, organizationService(ctx));
      router.service(AuthorizationService, authorizationService(ctx));
    },
  });
}

/** Zitadel's APIs demand the service account's token on every call, before anything else is looked at. */
function requireServiceAccount(ctx: IdpContext): Interceptor {
  return (next) => (request) => {
    const header = request.header.get('authorization');
    if (!header) throw unauthenticated('AUTH-7mr9m', 'auth header missing');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !sameSecret(match[1], ctx.serviceAccountToken))
      throw unauthenticated('AUTH-7fs1e', 'Token is invalid');
    return next(request);
  };
}
