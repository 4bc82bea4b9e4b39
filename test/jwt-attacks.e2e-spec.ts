import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { exportJWK } from 'jose';
import jwt from 'jsonwebtoken';
import type { SessionSigningKey } from '../src/auth/session-signing-key.js';
import { SESSION_SIGNING_KEY } from '../src/auth/session-token.service.js';
import {
  bearer,
  createIdentityUser,
  signedInUser,
  writeDirectly,
  type SignedInUser,
} from './support/identity.js';
import { submitLoginPage, zitadelTokens } from './support/oidc.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
const parts = (token: string) => token.split('.');
const decodePart = (part: string) =>
  JSON.parse(Buffer.from(part, 'base64url').toString()) as Record<string, unknown>;

/** A P-256 private key as SESSION_SIGNING_KEY takes it (the format before HS256 became the default). */
const EC_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

describe.each([
  ['an HS256 secret (the default)', {}],
  ['an ES256 key pair (a PEM in SESSION_SIGNING_KEY)', { SESSION_SIGNING_KEY: EC_PEM }],
])('JWT attacks on session tokens signed with %s: each answers 401', (_kind, env) => {
  let t: TestApp;
  let user: SignedInUser;
  let other: SignedInUser;
  let key: SessionSigningKey;
  let claims: Record<string, unknown>;

  /** A token signed with the service's real key, with the given claim and header changes. */
  const signed = (changes: Record<string, unknown>, header: Record<string, unknown> = {}) => {
    const payload = { ...claims, ...changes };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    return jwt.sign(payload, key.signingKey, {
      algorithm: key.algorithm,
      header: { alg: key.algorithm, kid: key.keyId, ...header },
    });
  };
  const me = (token: string) => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });

  beforeAll(async () => {
    t = await startTestApp(env);
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
      'HS256 signed with the public key (for an HS256 secret: with another secret)',
      () => {
        const macKey =
          key.algorithm === 'HS256'
            ? randomBytes(32)
            : key.verificationKey.export({ type: 'spki', format: 'pem' }).toString();
        const unsigned = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.keyId })}.${b64(claims)}`;
        return `${unsigned}.${createHmac('sha256', macKey).update(unsigned).digest('base64url')}`;
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

describe('Zitadel tokens: only access tokens for this API, judged by the current local profile', () => {
  let t: TestApp;
  let admin: SignedInUser;

  const get = (url: string, token: string) => t.http({ method: 'GET', url, headers: bearer(token) });
  const suspend = (userId: string) =>
    t.http({
      method: 'POST',
      url: `/api/users/${userId}/suspend`,
      headers: bearer(admin.token),
      payload: { reason: 'jwt attack suite' },
    });
  const activate = (userId: string) =>
    t.http({ method: 'POST', url: `/api/users/${userId}/activate`, headers: bearer(admin.token) });

  beforeAll(async () => {
    t = await startTestApp();
    admin = await signedInUser(t, { roles: ['admin'] });
  });
  afterAll(() => t.close());

  it('accepts the access token of the same login (control), refuses its ID token', async () => {
    const user = await signedInUser(t);
    const { idToken, accessToken } = await zitadelTokens(t, user);
    expect((await get('/api/users/me', accessToken)).statusCode).toBe(200);
    expectProblem(await get('/api/users/me', idToken), 401, 'unauthorized');
  });

  it('the ID token handed back by logout (id_token_hint) is no bearer', async () => {
    const user = await createIdentityUser(t);
    const start = await t.http({ method: 'POST', url: '/api/users/login', payload: { email: user.email } });
    const callback = await submitLoginPage(start.json().redirect_url as string, user.email, user.password);
    // The browser that started the login sends its state cookie back (the callback requires it).
    const stateCookie = String(start.headers['set-cookie'] ?? '').split(';')[0];
    const session = await t.http({
      method: 'GET',
      url: `${callback.pathname}${callback.search}`,
      headers: { cookie: stateCookie },
    });
    expect(session.statusCode).toBe(200);
    const loggedOut = await t.http({
      method: 'POST',
      url: '/api/users/logout',
      headers: bearer(session.json().session_token as string),
    });
    const idToken = new URL(loggedOut.json().end_session_url as string).searchParams.get('id_token_hint')!;
    expect(idToken).toBeTruthy();
    expectProblem(await get('/api/users/me', idToken), 401, 'unauthorized');
    expectProblem(await get(`/api/users/${session.json().user_id}`, idToken), 401, 'unauthorized');
  });

  it('a demoted admin’s tokens carry admin in their role claims, and are authorized as a user', async () => {
    const demoted = await signedInUser(t, { roles: ['admin'] });
    const { idToken, accessToken } = await zitadelTokens(t, demoted);
    expect((await get('/api/users?limit=1', accessToken)).statusCode).toBe(200);
    await writeDirectly(t, `UPDATE users SET roles = '{user}' WHERE id = $1`, [demoted.userId]);
    expectProblem(await get('/api/users?limit=1', accessToken), 403, 'forbidden');
    expectProblem(await get('/api/users?limit=1', idToken), 401, 'unauthorized');
    expect((await get('/api/users/me', accessToken)).statusCode).toBe(200);
  });

  it('a suspended or deleted user is refused with any token; the ID token stays dead after reactivation', async () => {
    const user = await signedInUser(t);
    const { idToken, accessToken } = await zitadelTokens(t, user);
    expect((await suspend(user.userId)).statusCode).toBe(200);
    for (const token of [user.token, idToken, accessToken])
      expectProblem(await get('/api/users/me', token), 401, 'unauthorized');
    expect((await activate(user.userId)).statusCode).toBe(200);
    expectProblem(await get('/api/users/me', user.token), 401, 'unauthorized');
    expectProblem(await get('/api/users/me', idToken), 401, 'unauthorized');

    const deleted = await t.http({
      method: 'DELETE',
      url: `/api/users/${user.userId}`,
      headers: bearer(admin.token),
    });
    expect(deleted.statusCode).toBe(200);
    for (const token of [idToken, accessToken])
      expectProblem(await get('/api/users/me', token), 401, 'unauthorized');
  });
});
