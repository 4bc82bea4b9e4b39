import { Inject, Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../config/app-config.js';
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

/** Signs the bearer tokens this service hands out at login. Each names its session (`sid`). */
@Injectable()
export class SessionTokenService {
  private readonly issuer: string;
  private readonly audience: string;

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
}
