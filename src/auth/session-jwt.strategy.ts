import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { PassportStrategy } from '@nestjs/passport';
import jwt from 'jsonwebtoken';
import { ExtractJwt, Strategy } from 'passport-jwt';
import type { AppConfig } from '../config/app-config.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { PermissionsService } from './permissions.service.js';
import type { Principal } from './principal.js';
import type { SessionSigningKey } from './session-signing-key.js';
import { SESSION_SIGNING_KEY, SESSION_TOKEN_USE, type SessionTokenClaims } from './session-token.service.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const SESSION_JWT_STRATEGY = 'session-jwt';

/**
 * Verifies this service's session tokens: signature with our public key only (a token naming another
 * `kid`, or carrying its own `jwk`/`jku`, is refused before any crypto), algorithm, issuer and audience
 * pinned, `exp` required; then the session itself must be live.
 */
@Injectable()
export class SessionJwtStrategy extends PassportStrategy(Strategy, SESSION_JWT_STRATEGY) {
  constructor(
    @Inject(SESSION_SIGNING_KEY) key: SessionSigningKey,
    config: ConfigService<AppConfig, true>,
    private readonly sessions: SessionsService,
    private readonly permissions: PermissionsService,
  ) {
    const { issuer, audience } = config.get('auth', { infer: true });
    super({
      jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
      secretOrKeyProvider: (_request, rawToken: string, done) => {
        const header = jwt.decode(rawToken, { complete: true })?.header;
        if (!header || header.kid !== key.keyId || 'jwk' in header || 'jku' in header || 'x5u' in header) {
          return done(new Error('token not signed by this service'));
        }
        // The typings say string | Buffer, but jsonwebtoken takes a KeyObject as is and parses nothing per call.
        done(null, key.publicKey as unknown as Buffer);
      },
      algorithms: [key.algorithm],
      issuer,
      audience,
      ignoreExpiration: false,
    });
  }

  async validate(claims: Partial<SessionTokenClaims>): Promise<Principal | false> {
    if (
      typeof claims.exp !== 'number' ||
      claims.token_use !== SESSION_TOKEN_USE ||
      typeof claims.sid !== 'string' ||
      typeof claims.sub !== 'string' ||
      !UUID.test(claims.sid) ||
      !UUID.test(claims.sub)
    ) {
      return false;
    }
    const session = await this.sessions.authenticate(claims.sid, claims.sub);
    if (!session) return false;
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
