import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Permission } from '../config/app-config.js';

/** Who is calling, established by the global guard from a verified token. */
export interface Principal {
  /** Local user id (UUID); null for a Zitadel service account that has no local profile. */
  userId: string | null;
  zitadelId: string;
  /** The session behind a session token; null for Zitadel-issued access tokens. */
  sessionId: string | null;
  roles: string[];
  /**
   * The caller's Zitadel organization: `admin:*` permissions apply to its users only. For a service
   * account without a local profile, its token's resource owner claim (else the configured organization).
   */
  orgId: string;
  /** The bot a session was opened for (session tokens only); its bot roles apply to the BASIC variables. */
  botId: string | null;
  permissions: ReadonlySet<Permission>;
  tokenKind: 'session' | 'zitadel';
}

/** Whether the caller may act on users of every organization (`iam:users`). */
export const isInstanceWide = (principal: Principal): boolean => principal.permissions.has('iam:users');

export type AuthenticatedRequest = FastifyRequest & { user?: Principal };

/** The authenticated caller; only on routes that are not public. */
export const CurrentPrincipal = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Principal => {
    const principal = context.switchToHttp().getRequest<AuthenticatedRequest>().user;
    if (!principal) throw new Error('CurrentPrincipal used on a route without authentication');
    return principal;
  },
);
