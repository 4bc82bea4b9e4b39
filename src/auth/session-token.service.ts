import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import type { AppConfig } from '../config/app-config.js';
import type { SessionSigningKey } from './session-signing-key.js';
import { UUID_PATTERN } from '../common/http/params.js';

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
 * Tokens whose signature was already verified, kept until they expire. A token's bytes either carry a
 * valid signature or they do not, so checking them again on every request (an ES256 verification, about a
 * tenth of a `/me` request's CPU) buys nothing. What can change, the session and the user, is read from
 * the database on every request regardless (SessionsService.authenticate). Only successes are kept; the
 * LRU bound caps the memory (a token and its claims: well under 1 KB each).
 */
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;

/**
 * Signs the bearer tokens this service hands out at login, each naming its session (`sid`), and verifies
 * them: our key only (a token naming another `kid`, or carrying its own `jwk`/`jku`/`x5u`, is refused
 * before any crypto), algorithm, issuer and audience pinned, `exp` required.
 */
@Injectable()
export class SessionTokenService {
  private readonly issuer: string;
  private readonly audience: string;
  private readonly verified = new LRUCache<string, VerifiedSessionToken>({ max: VERIFIED_TOKEN_CACHE_SIZE });

  constructor(
    @Inject(SESSION_SIGNING_KEY) private readonly key: SessionSigningKey,
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
    return jwt.sign(claims, this.key.privateKey, {
      algorithm: this.key.algorithm,
      keyid: this.key.keyId,
      header: { alg: this.key.algorithm, typ: 'JWT' },
    });
  }

  /** The token's session, or null when the token is not one of ours, is malformed, or has expired. */
  verify(token: string): VerifiedSessionToken | null {
    const known = this.verified.get(token);
    if (known) {
      if (known.expiresAt * 1000 > Date.now()) return known;
      this.verified.delete(token);
      return null;
    }
    let header: jwt.JwtHeader | undefined;
    try {
      header = jwt.decode(token, { complete: true })?.header;
    } catch {
      // jws parses a `typ: JWT` token's payload unguarded: malformed JSON throws instead of returning null.
      return null;
    }
    if (!header || header.kid !== this.key.keyId || 'jwk' in header || 'jku' in header || 'x5u' in header) {
      return null;
    }
    let claims: Partial<SessionTokenClaims> & JwtPayload;
    try {
      claims = jwt.verify(token, this.key.publicKey, {
        algorithms: [this.key.algorithm],
        issuer: this.issuer,
        audience: this.audience,
      }) as Partial<SessionTokenClaims> & JwtPayload;
    } catch {
      return null;
    }
    if (
      typeof claims.exp !== 'number' ||
      claims.token_use !== SESSION_TOKEN_USE ||
      typeof claims.sid !== 'string' ||
      typeof claims.sub !== 'string' ||
      !UUID_PATTERN.test(claims.sid) ||
      !UUID_PATTERN.test(claims.sub)
    ) {
      return null;
    }
    const session = { userId: claims.sub, sessionId: claims.sid, expiresAt: claims.exp };
    this.verified.set(token, session);
    return session;
  }
}
