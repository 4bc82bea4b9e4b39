import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../config/app-config.js';
import { UUID_PATTERN } from '../common/http/params.js';
import type { SessionSigningKey } from './session-signing-key.js';

export const SESSION_SIGNING_KEY = Symbol('SESSION_SIGNING_KEY');

/** Marks our session tokens apart from any other JWT signed with the same key or issuer. */
export const SESSION_TOKEN_USE = 'session';

export interface SessionTokenClaims {
  sub: string;
  sid: string;
  token_use: typeof SESSION_TOKEN_USE;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

/** What a verified session token tells: whose session it is and until when the token is valid. */
export interface VerifiedSessionToken {
  userId: string;
  sessionId: string;
  /** Seconds since the epoch. */
  expiresAt: number;
}

/**
 * Signs the bearer tokens this service hands out at login, each naming its session (`sid`). They are
 * verified by SessionTokenStrategy (passport-jwt over jsonwebtoken) with the same key.
 */
@Injectable()
export class SessionTokenService {
  readonly issuer: string;
  readonly audience: string;

  constructor(
    @Inject(SESSION_SIGNING_KEY) readonly key: SessionSigningKey,
    config: ConfigService<AppConfig, true>,
  ) {
    ({ issuer: this.issuer, audience: this.audience } = config.get('auth', { infer: true }));
  }

  sign(session: { userId: string; sessionId: string; expiresAt: Date }): string {
    const claims: SessionTokenClaims = {
      sub: session.userId,
      sid: session.sessionId,
      token_use: SESSION_TOKEN_USE,
      iss: this.issuer,
      aud: this.audience,
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(session.expiresAt.getTime() / 1000),
    };
    return jwt.sign(claims, this.key.signingKey, {
      algorithm: this.key.algorithm,
      keyid: this.key.keyId,
      header: { alg: this.key.algorithm, typ: 'JWT' },
    });
  }
}

/**
 * The session a verified token's claims name, or null when they are not a session token's: `exp` required,
 * `token_use` ours, `sid` and `sub` UUIDs (they go into SQL as uuid parameters).
 */
export function sessionOfClaims(claims: Record<string, unknown>): VerifiedSessionToken | null {
  const { exp, sid, sub, token_use: use } = claims;
  if (
    typeof exp !== 'number' ||
    use !== SESSION_TOKEN_USE ||
    typeof sid !== 'string' ||
    typeof sub !== 'string' ||
    !UUID_PATTERN.test(sid) ||
    !UUID_PATTERN.test(sub)
  ) {
    return null;
  }
  return { userId: sub, sessionId: sid, expiresAt: exp };
}
