import { Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { AuthGuard } from '@nestjs/passport';
import { decodeJwt } from 'jose';
import { ACCESS_METADATA, type Access } from '../common/access.js';
import { ApiError } from '../common/errors/api-error.js';
import { UsersService } from '../users/users.service.js';
import { ZitadelClient } from '../zitadel/zitadel.client.js';
import { PermissionsService } from './permissions.service.js';
import type { AuthenticatedRequest, Principal } from './principal.js';
import { SESSION_JWT_STRATEGY } from './session-jwt.strategy.js';

class SessionTokenGuard extends AuthGuard(SESSION_JWT_STRATEGY) {
  override handleRequest<T>(error: unknown, principal: T | false): T {
    // passport-jwt reports every token problem as a failure (no principal); `error` is what our
    // validate() threw: the session lookup failing, e.g. the database being down. That is a 503 for the
    // problem filter to classify, not a 401 that would make clients throw away a valid session.
    if (error) throw error as Error;
    if (!principal) throw ApiError.unauthorized('The token is invalid, expired or revoked');
    return principal;
  }
}

/**
 * The one global guard. Every route declares its access (see common/access.ts); a route without a
 * declaration is refused, so forgetting one fails closed. Session tokens go through passport-jwt;
 * Zitadel-issued access tokens (for internal services) through Zitadel's JWKS.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly logger = new Logger(AccessGuard.name);
  private readonly sessionTokens = new SessionTokenGuard();

  constructor(
    private readonly reflector: Reflector,
    private readonly zitadel: ZitadelClient,
    private readonly users: UsersService,
    private readonly permissions: PermissionsService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
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
    const principal = await this.authenticate(context, request);
    request.user = principal;

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

  private async authenticate(context: ExecutionContext, request: AuthenticatedRequest): Promise<Principal> {
    const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (!token) throw ApiError.unauthorized('A bearer token is required');
    if (this.isZitadelToken(token)) return this.authenticateZitadelToken(token);
    await this.sessionTokens.canActivate(context);
    return request.user!;
  }

  /** Routing by the (unverified) issuer only picks the verifier; each verifier pins its own issuer. */
  private isZitadelToken(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.zitadel.issuer;
    } catch {
      return false;
    }
  }

  private async authenticateZitadelToken(token: string): Promise<Principal> {
    let claims;
    try {
      claims = await this.zitadel.verifyAccessToken(token);
    } catch (error) {
      // Zitadel's JWKS being unreachable is its outage (503), not a bad token.
      if (error instanceof ApiError && error.code === 'upstream_unavailable') throw error;
      throw ApiError.unauthorized('The token is invalid, expired or revoked');
    }
    if (typeof claims.exp !== 'number') throw ApiError.unauthorized('The token has no expiry');
    const user = await this.users.findByZitadelId(claims.sub);
    // A local user must be active; a caller with no local profile is a service account.
    if (user && user.status !== 'active')
      throw ApiError.unauthorized('The token is invalid, expired or revoked');
    return {
      userId: user?.id ?? null,
      zitadelId: claims.sub,
      sessionId: null,
      roles: claims.roles,
      permissions: this.permissions.forRoles(claims.roles),
      tokenKind: 'zitadel',
    };
  }
}
