import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type { ConfigService } from '@nestjs/config';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../config/app-config.js';
import { loadSessionSigningKey, type SessionSigningKey } from './session-signing-key.js';
import { SessionTokenService } from './session-token.service.js';

const config = {
  get: () => ({ issuer: 'users-api', audience: 'users-api' }),
} as unknown as ConfigService<AppConfig, true>;

async function signingKey(): Promise<SessionSigningKey> {
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();
  return loadSessionSigningKey({ pem, file: undefined, dataDir: '/nonexistent' });
}

describe('SessionTokenService.verify', () => {
  let key: SessionSigningKey;
  let otherKey: SessionSigningKey;
  beforeAll(async () => {
    [key, otherKey] = await Promise.all([signingKey(), signingKey()]);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  const session = (ttlMs = 60_000) => ({
    userId: randomUUID(),
    sessionId: randomUUID(),
    expiresAt: new Date(Date.now() + ttlMs),
  });

  it('returns the session a token names, and checks each token signature only once', () => {
    const tokens = new SessionTokenService(key, config);
    const s = session();
    const token = tokens.sign(s);
    const verify = jest.spyOn(jwt, 'verify');

    for (let i = 0; i < 3; i++) {
      expect(tokens.verify(token)).toEqual({
        userId: s.userId,
        sessionId: s.sessionId,
        expiresAt: Math.floor(s.expiresAt.getTime() / 1000),
      });
    }
    expect(verify).toHaveBeenCalledTimes(1);
  });

  it('refuses a token that was verified while valid once it has expired', () => {
    const tokens = new SessionTokenService(key, config);
    const token = tokens.sign(session(5_000));
    expect(tokens.verify(token)).not.toBeNull();

    const now = Date.now();
    jest.spyOn(Date, 'now').mockReturnValue(now + 6_000);
    expect(tokens.verify(token)).toBeNull();
  });

  it('never remembers a refusal: a forged signature stays refused, and is checked every time', () => {
    const tokens = new SessionTokenService(key, config);
    const [header, payload] = tokens.sign(session()).split('.');
    const forged = `${header}.${payload}.${tokens.sign(session()).split('.')[2]}`;
    const verify = jest.spyOn(jwt, 'verify');

    expect(tokens.verify(forged)).toBeNull();
    expect(tokens.verify(forged)).toBeNull();
    expect(verify).toHaveBeenCalledTimes(2);
  });

  it('refuses a token whose payload is not JSON (instead of throwing)', () => {
    const tokens = new SessionTokenService(key, config);
    const part = (text: string) => Buffer.from(text).toString('base64url');
    const header = part(JSON.stringify({ alg: key.algorithm, typ: 'JWT', kid: key.keyId }));
    expect(tokens.verify(`${header}.${part('{not json')}.${part('sig')}`)).toBeNull();
  });

  it('refuses tokens of another key, issuer or kind without caching them', () => {
    const tokens = new SessionTokenService(key, config);
    const foreign = new SessionTokenService(otherKey, config).sign(session());
    expect(tokens.verify(foreign)).toBeNull();

    const claims = { sub: randomUUID(), sid: randomUUID(), token_use: 'session', aud: 'users-api' };
    const options = { algorithm: key.algorithm, keyid: key.keyId, expiresIn: 60 } as const;
    expect(tokens.verify(jwt.sign({ ...claims, iss: 'someone-else' }, key.privateKey, options))).toBeNull();
    expect(
      tokens.verify(jwt.sign({ ...claims, iss: 'users-api', token_use: 'id' }, key.privateKey, options)),
    ).toBeNull();
    expect(tokens.verify(jwt.sign({ ...claims, iss: 'users-api' }, key.privateKey, options))).not.toBeNull();
  });
});
