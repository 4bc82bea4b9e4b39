import { Injectable, Logger, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { decodeJwt } from 'jose';
import { ACCESS_METADATA, type Access } from '../common/access.js';
import { ApiError } from '../common/errors/api-error.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { UsersService } from '../users/users.service.js';
import { ZitadelClient } from '../zitadel/zitadel.client.js';
import { PermissionsService } from './permissions.service.js';
import type { AuthenticatedRequest, Principal } from './principal.js';
import { SessionTokenService, type VerifiedSessionToken } from './session-token.service.js';

/**
 * The one global guard. Every route declares its access (see common/access.ts); a route without a
 * declaration is refused, so forgetting one fails closed. Session tokens are verified by
 * SessionTokenService and must name a live session; Zitadel-issued access tokens (for internal services)
 * are verified against Zitadel's JWKS.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly logger = new Logger(AccessGuard.name);

  constructor(
    private readonly reflector: Reflector,
    private readonly sessionTokens: SessionTokenService,
    private readonly sessions: SessionsService,
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
    const principal = await this.authenticate(request);
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

  private async authenticate(request: AuthenticatedRequest): Promise<Principal> {
    const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    if (!token) throw ApiError.unauthorized('A bearer token is required');
    const sessionToken = this.sessionTokens.verify(token);
    if (sessionToken) return this.authenticateSession(sessionToken);
    if (this.isZitadelToken(token)) return this.authenticateZitadelToken(token);
    throw ApiError.unauthorized('The token is invalid, expired or revoked');
  }

  /**
   * The session must still be active and its user too, checked on every request so that a revocation
   * counts from the next one. A failing lookup (the database down) propagates as a 503, not a 401 that
   * would make clients throw away a valid session.
   */
  private async authenticateSession(token: VerifiedSessionToken): Promise<Principal> {
    const session = await this.sessions.authenticate(token.sessionId, token.userId);
    if (!session) throw ApiError.unauthorized('The token is invalid, expired or revoked');
    return {
      userId: session.userId,
      zitadelId: session.zitadelId,
      sessionId: session.sessionId,
      roles: session.roles,
      permissions: this.permissions.forRoles(session.roles),
      tokenKind: 'session',
    };
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
