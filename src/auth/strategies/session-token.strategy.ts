import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { Request } from 'express';
import type { FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import { Strategy } from 'passport-jwt';
import { SessionsService } from '../../sessions/sessions.service.js';
import { PermissionsService } from '../permissions.service.js';
import type { Principal } from '../principal.js';
import { SessionTokenService, sessionOfClaims, type VerifiedSessionToken } from '../session-token.service.js';
import { asSecret, bearerToken, carriesOwnKey, jwtHeader, NotThisStrategy } from './bearer.js';
import { registerAs, STRATEGY_NAMES, unregister, type StrategyNames } from './strategy-names.js';

const NOT_OURS = new NotThisStrategy('not a session token of this service');
const NOT_LIVE = new NotThisStrategy('the session is over');

/**
 * Tokens whose signature passport-jwt already verified, kept until they expire: the same bytes verify the
 * same way every time, and a hit costs a map lookup instead of a verification (measured here: HS256
 * 13–18 µs, ES256 about 200 µs; docs/identity.md "Verified-token cache"). Only successes are kept; what can change
 * (the session, the user) is read from the database on every request regardless.
 */
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * This service's session tokens: passport-jwt verifies them with jsonwebtoken against our key (a KeyObject)
 * with algorithm, issuer and audience pinned; a token naming another `kid`, or carrying its own key
 * (`jwk`/`jku`/`x5u`/`x5c`), is passed on before any crypto. Then the session must still be active and
 * its user too: one SQL statement written once (SessionsService.authenticate) on every request, so that a
 * revocation counts from the next one. A failing lookup (the database down) propagates as a 503, not a
 * 401 that would make clients throw away a valid session.
 */
@Injectable()
export class SessionTokenStrategy extends PassportStrategy(Strategy) implements OnModuleDestroy {
  private readonly verified = new LRUCache<string, VerifiedSessionToken>({ max: VERIFIED_TOKEN_CACHE_SIZE });

  constructor(
    tokens: SessionTokenService,
    private readonly sessions: SessionsService,
    private readonly permissions: PermissionsService,
    @Inject(STRATEGY_NAMES) private readonly names: StrategyNames,
  ) {
    const { keyId, algorithm, verificationKey } = tokens.key;
    const key = asSecret(verificationKey);
    super({
      jwtFromRequest: bearerToken,
      secretOrKeyProvider: (
        _request: unknown,
        token: string,
        done: (error: unknown, key?: Buffer) => void,
      ) => {
        const header = jwtHeader(token);
        if (!header || header.kid !== keyId || carriesOwnKey(header)) done(NOT_OURS);
        else done(null, key);
      },
      algorithms: [algorithm],
      issuer: tokens.issuer,
      audience: tokens.audience,
      passReqToCallback: true,
    });
    registerAs(names.session, this);
  }

  onModuleDestroy(): void {
    unregister(this.names.session);
  }

  /** A token verified before skips passport-jwt's verification; any other goes through it. */
  override authenticate(request: Request, options?: unknown): void {
    const token = bearerToken(request);
    const known = token ? this.verified.get(token) : undefined;
    if (!known) {
      super.authenticate(request, options);
      return;
    }
    if (known.expiresAt * 1000 <= Date.now()) {
      this.verified.delete(token!);
      this.fail(NOT_LIVE, 401);
      return;
    }
    this.principalOf(known).then(
      (principal) => (principal ? this.success(principal) : this.fail(NOT_LIVE, 401)),
      (error: unknown) => this.error(error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** After passport-jwt verified the token. null: not a live session; the guard answers 401. */
  async validate(request: FastifyRequest, claims: Record<string, unknown>): Promise<Principal | null> {
    const token = sessionOfClaims(claims);
    if (!token) return null;
    this.verified.set(bearerToken(request)!, token);
    return this.principalOf(token);
  }

  private async principalOf(token: VerifiedSessionToken): Promise<Principal | null> {
    const session = await this.sessions.authenticate(token.sessionId, token.userId);
    if (!session) return null;
    return {
      userId: session.userId,
      zitadelId: session.zitadelId,
      sessionId: session.sessionId,
      roles: session.roles,
      orgId: session.orgId,
      botId: session.botId,
      permissions: this.permissions.forRoles(session.roles, session.orgId),
      tokenKind: 'session',
    };
  }
}
