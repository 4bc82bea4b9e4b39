import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import type { ConfigService } from '@nestjs/config';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../config/app-config.js';
import { isSigningKeyText, loadSessionSigningKey, sessionSigningKey } from './session-signing-key.js';
import { SessionTokenService, sessionOfClaims } from './session-token.service.js';

const config = {
  get: () => ({ issuer: 'users-api', audience: 'users-api' }),
} as unknown as ConfigService<AppConfig, true>;

const ecPem = () =>
  generateKeyPairSync('ec', { namedCurve: 'P-256' })
    .privateKey.export({ type: 'pkcs8', format: 'pem' })
    .toString();

const session = () => ({
  userId: randomUUID(),
  sessionId: randomUUID(),
  expiresAt: new Date(Date.now() + 60_000),
});

describe('session signing key', () => {
  it('generates a 256-bit development secret once per data directory, readable by the owner only', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'session-key-'));
    const first = await loadSessionSigningKey({ key: undefined, file: undefined, dataDir });
    const again = await loadSessionSigningKey({ key: undefined, file: undefined, dataDir });
    expect(first.algorithm).toBe('HS256');
    expect(first.signingKey.type).toBe('secret');
    expect(first.signingKey.symmetricKeySize).toBe(32);
    expect(again.keyId).toBe(first.keyId);
    const file = join(dataDir, 'session-signing-secret');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(first.keyId).not.toContain((await readFile(file, 'utf8')).trim());
  });

  it('takes a base64 or base64url secret of at least 256 bits, and refuses shorter ones', () => {
    const bytes = randomBytes(32);
    expect(sessionSigningKey(bytes.toString('base64')).keyId).toBe(
      sessionSigningKey(bytes.toString('base64url')).keyId,
    );
    expect(isSigningKeyText(randomBytes(31).toString('base64'))).toBe(false);
    expect(() => sessionSigningKey(randomBytes(16).toString('base64'))).toThrow(/256 bits/);
    expect(isSigningKeyText('not base64 at all!')).toBe(false);
  });

  it('still takes a PEM private key (ES256), with the RFC 7638 thumbprint as kid as before', async () => {
    const key = sessionSigningKey(ecPem());
    expect(key.algorithm).toBe('ES256');
    expect(key.verificationKey.type).toBe('public');
    expect(key.keyId).toBe(await calculateJwkThumbprint(await exportJWK(key.verificationKey)));
  });
});

describe('SessionTokenService.sign', () => {
  it.each([
    ['HS256', () => sessionSigningKey(randomBytes(32).toString('base64url'))],
    ['ES256', () => sessionSigningKey(ecPem())],
  ])('signs a %s token naming the session, with our kid', (algorithm, makeKey) => {
    const key = makeKey();
    const s = session();
    const token = new SessionTokenService(key, config).sign(s);
    const verified = jwt.verify(token, key.verificationKey, { complete: true, algorithms: [key.algorithm] });
    expect(verified.header).toMatchObject({ alg: algorithm, kid: key.keyId, typ: 'JWT' });
    expect(sessionOfClaims(verified.payload as Record<string, unknown>)).toEqual({
      userId: s.userId,
      sessionId: s.sessionId,
      expiresAt: Math.floor(s.expiresAt.getTime() / 1000),
    });
  });
});

describe('sessionOfClaims', () => {
  const claims = { sub: randomUUID(), sid: randomUUID(), token_use: 'session', exp: 2_000_000_000 };
  it.each([
    ['no exp', { exp: undefined }],
    ['another token use', { token_use: 'refresh' }],
    ['no sid', { sid: undefined }],
    ['a sid that is no UUID', { sid: "1' OR '1'='1" }],
    ['a sub that is no UUID', { sub: '69629012906488334' }],
  ])('refuses %s', (_case, change) => {
    expect(sessionOfClaims({ ...claims, ...change })).toBeNull();
  });
});
