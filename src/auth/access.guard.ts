import { Injectable, Logger, type CanActivate, type ExecutionContext, type Type } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { ACCESS_METADATA, type Access } from '../common/access.js';
import { ApiError } from '../common/errors/api-error.js';
import { isInstanceWide, type AuthenticatedRequest, type Principal } from './principal.js';
import { bearerToken } from './strategies/bearer.js';
import type { StrategyNames } from './strategies/strategy-names.js';

/** The organization of a user (deleted ones included); null when there is no such user. */
export type OrganizationOfUser = (userId: string) => Promise<string | null>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The one global guard: an AuthGuard over this application's strategies (this service's session tokens
 * first, then Zitadel's JWT access tokens, then Zitadel's opaque access tokens by introspection; see
 * strategy-names.ts for why the names are per application), plus the permission check. Every route declares its access (see common/access.ts); public
 * routes skip authentication, and a route without a declaration is refused, so forgetting one fails closed.
 *
 * Organizations: on every authenticated route whose `:id` names a user, a user of another organization
 * does not exist for the caller (404 `user_not_found`, before any permission check, so that nothing tells
 * it apart from an unknown id) unless the caller holds `iam:users`. One check here rather than one per
 * route, so a new `:id` route is scoped without anyone remembering to.
 */
export function accessGuard(
  names: StrategyNames,
): Type<CanActivate> & (new (reflector: Reflector, organizationOf?: OrganizationOfUser) => CanActivate) {
  @Injectable()
  class AccessGuard extends AuthGuard([names.session, names.zitadel, names.introspection]) {
    private readonly logger = new Logger(AccessGuard.name);

    constructor(
      private readonly reflector: Reflector,
      private readonly organizationOf?: OrganizationOfUser,
    ) {
      super();
    }

    override async canActivate(context: ExecutionContext): Promise<boolean> {
      const access = this.reflector.getAllAndOverride<Access | undefined>(ACCESS_METADATA, [
        context.getHandler(),
        context.getClass(),
      ]);
      if (!access) {
        this.logger.error(
          `${context.getClass().name}.${context.getHandler().name} declares no access; refused`,
        );
        throw ApiError.forbidden('This route is not available');
      }
      if (access === 'public') return true;

      const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
      if (!bearerToken(request)) throw ApiError.unauthorized('A bearer token is required');
      // Passport runs the strategies; handleRequest() below puts the principal on request.user.
      await super.canActivate(context);
      const principal = request.user!;

      await this.assertSameOrganization(request, principal);
      if (access === 'authenticated') return true;
      const permission = 'permission' in access ? access.permission : access.selfOr;
      if (principal.permissions.has(permission)) return true;
      if (
        'selfOr' in access &&
        principal.userId !== null &&
        request.params?.['id' as never] === principal.userId
      ) {
        return true;
      }
      throw ApiError.forbidden(
        'selfOr' in access
          ? `Only the user themself or a caller with ${permission} may do this`
          : `Requires the ${permission} permission`,
      );
    }

    /** 404 when `:id` names a user of another organization and the caller is not instance-wide. */
    private async assertSameOrganization(request: AuthenticatedRequest, principal: Principal): Promise<void> {
      const id = request.params?.['id' as never] as unknown;
      // A malformed id is left to the route's own validation (422).
      if (typeof id !== 'string' || id === principal.userId || !UUID.test(id) || !this.organizationOf) return;
      if (isInstanceWide(principal)) return;
      const orgId = await this.organizationOf(id);
      if (orgId !== null && orgId !== principal.orgId) throw ApiError.userNotFound();
    }

    /**
     * What Passport sees of the request: its headers, on an object of its own. Passport decorates the
     * object it is given (`login`, `logout`, `isAuthenticated`, `_sessionManager`, `authInfo`, …), which on
     * Fastify's request would change that object's shape on every request for helpers no route here uses
     * (there are no Passport sessions).
     */
    override getRequest(context: ExecutionContext): Pick<AuthenticatedRequest, 'headers'> {
      return { headers: context.switchToHttp().getRequest<AuthenticatedRequest>().headers };
    }

    /**
     * Passport's verdict. An error (the database down while checking a session) propagates as it is; when
     * every strategy passed the token on, an ApiError among their reasons (Zitadel's JWKS unreachable: 503)
     * wins over the 401, so clients do not throw away a valid token during an outage.
     */
    override handleRequest<TUser = Principal>(
      error: Error | null,
      principal: TUser | false,
      info: unknown,
      context: ExecutionContext,
    ): TUser {
      if (error) throw error;
      if (principal) {
        context.switchToHttp().getRequest<AuthenticatedRequest>().user = principal as unknown as Principal;
        return principal;
      }
      const outage = (Array.isArray(info) ? info : [info]).find((reason) => reason instanceof ApiError);
      if (outage) throw outage;
      throw ApiError.unauthorized('The token is invalid, expired or revoked');
    }
  }
  return AccessGuard;
}
