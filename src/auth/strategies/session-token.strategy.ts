import { Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-jwt';
import { SessionsService } from '../../sessions/sessions.service.js';
import { PermissionsService } from '../permissions.service.js';
import type { Principal } from '../principal.js';
import { SessionTokenService, sessionOfClaims } from '../session-token.service.js';
import { asSecret, bearerToken, carriesOwnKey, jwtHeader, NotThisStrategy } from './bearer.js';

export const SESSION_STRATEGY = 'session-token';

const NOT_OURS = new NotThisStrategy('not a session token of this service');

/**
 * This service's session tokens: passport-jwt verifies them with jsonwebtoken against our key (a KeyObject)
 * with algorithm, issuer and audience pinned; a token naming another `kid`, or carrying its own key
 * (`jwk`/`jku`/`x5u`/`x5c`), is passed on before any crypto. Then the session must still be active and
 * its user too: one SQL statement written once (SessionsService.authenticate) on every request, so that a
 * revocation counts from the next one. A failing lookup (the database down) propagates as a 503, not a
 * 401 that would make clients throw away a valid session.
 */
@Injectable()
export class SessionTokenStrategy extends PassportStrategy(Strategy, SESSION_STRATEGY) {
  constructor(
    tokens: SessionTokenService,
    private readonly sessions: SessionsService,
    private readonly permissions: PermissionsService,
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
    });
  }

  /** null: not a live session; passport then tries the next strategy, and the guard answers 401. */
  async validate(claims: Record<string, unknown>): Promise<Principal | null> {
    const token = sessionOfClaims(claims);
    if (!token) return null;
    const session = await this.sessions.authenticate(token.sessionId, token.userId);
    if (!session) return null;
    return {
      userId: session.userId,
      zitadelId: session.zitadelId,
      sessionId: session.sessionId,
      roles: session.roles,
      permissions: this.permissions.forRoles(session.roles),
      tokenKind: 'session',
    };
  }
}
