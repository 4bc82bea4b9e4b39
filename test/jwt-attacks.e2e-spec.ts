import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { exportJWK } from 'jose';
import jwt from 'jsonwebtoken';
import type { SessionSigningKey } from '../src/auth/session-signing-key.js';
import { SESSION_SIGNING_KEY } from '../src/auth/session-token.service.js';
import { bearer, signedInUser, type SignedInUser } from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (token: string) => token.split('.');
const decodePart = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

describe('JWT attacks on session tokens: each answers 401', () => {
  let t: TestApp;
  let user: SignedInUser;
  let other: SignedInUser;
  let key: SessionSigningKey;
  let claims: Record<string, unknown>;

  /** A token signed with the service's real key, with the given claim and header changes. */
  const signed = (changes: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const payload = { ...claims, ...changes };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    return jwt.sign(payload, key.privateKey, {
      algorithm: key.algorithm,
      header: { alg: key.algorithm, kid: key.keyId, ...header },
    });
  };
  const me = (token: string) => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });

  beforeAll(async () => {
    t = await startTestApp();
    user = await signedInUser(t);
    other = await signedInUser(t);
    key = t.app.get<SessionSigningKey>(SESSION_SIGNING_KEY);
    claims = decodePart(parts(user.token)[1]);
  });
  afterAll(() => t.close());

  it('accepts the genuine token (control)', async () => {
    expect((await me(user.token)).statusCode).toBe(200);
    expect((await me(signed({}))).statusCode).toBe(200);
  });

  it.each([
    ['alg none', () => `${b64({ alg: 'none', typ: 'JWT' })}.${parts(user.token)[1]}.`],
    ['stripped signature', () => `${parts(user.token)[0]}.${parts(user.token)[1]}.`],
    [
      'tampered payload (another user)',
      () =>
        `${parts(user.token)[0]}.${b64({ ...claims, sub: other.userId, sid: other.sessionId })}.${parts(user.token)[2]}`,
    ],
    [
      'HS256 signed with the public key',
      () => {
        const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
        const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.keyId })}.${b64(claims)}`;
        return `${unsigned}.${createHmac('sha256', pem).update(unsigned).digest('base64url')}`;
      },
    ],
    ['expired', () => signed({ exp: Math.floor(Date.now() / 1000) - 60 })],
    ['nbf in the future', () => signed({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ['no exp', () => signed({ exp: undefined })],
    ['wrong iss', () => signed({ iss: 'someone-else' })],
    ['wrong aud', () => signed({ aud: 'another-service' })],
    ['another token type', () => signed({ token_use: 'refresh' })],
    ['no session id', () => signed({ sid: undefined })],
    ['unknown kid', () => signed({}, { kid: 'not-our-key' })],
    ['jku header', () => signed({}, { jku: 'http://127.0.0.1:1/jwks.json' })],
    ['garbage', () => 'not.a.token'],
    [
      'a JWT header over a payload that is not JSON',
      () =>
        `${b64({ alg: 'ES256', typ: 'JWT', kid: key.keyId })}.${Buffer.from('{x').toString('base64url')}.sig`,
    ],
    ['empty bearer', () => ''],
  ])('%s', async (_name, makeToken) => {
    expectProblem(await me(makeToken()), 401, 'unauthorized');
  });

  it('embedded jwk header with the attacker’s own key', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = jwt.sign(claims, attacker.privateKey, {
      algorithm: 'ES256',
      header: { alg: 'ES256', kid: key.keyId, jwk: await exportJWK(attacker.publicKey) } as jwt.JwtHeader,
    });
    expectProblem(await me(token), 401, 'unauthorized');
  });

  it('a token signed by another key claiming our kid', async () => {
    const attacker = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = jwt.sign(claims, attacker.privateKey, { algorithm: 'ES256', keyid: key.keyId });
    expectProblem(await me(token), 401, 'unauthorized');
  });

  it('a non-bearer authorization scheme', async () => {
    const res = await t.http({
      method: 'GET',
      url: '/api/users/me',
      headers: { authorization: `Basic ${user.token}` },
    });
    expectProblem(res, 401, 'unauthorized');
  });
});
