import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import { bearer, signedInUser } from './support/identity.js';
import { zitadelTokens } from './support/oidc.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Another service calls this one with a Zitadel token of its machine user: an opaque token (Zitadel's
 * default token type "Bearer"), checked by RFC 7662 introspection, or a JWT, checked locally. Both work;
 * an ID token, an inactive or revoked opaque token, and a token without this project's audience do not.
 */
describe('internal service calls with Zitadel tokens of either kind', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;

  const get = (url: string, token: string) => t.http({ method: 'GET', url, headers: bearer(token) });

  /** A machine user's token from the client credentials grant, asking for the project and its roles. */
  async function machineToken(
    user: { clientId: string; clientSecret: string },
    scope = `openid urn:zitadel:iam:org:project:id:${idp.projectId}:aud urn:zitadel:iam:org:projects:roles`,
  ): Promise<string> {
    const reply = await fetch(new URL('/oauth/v2/token', idp.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${user.clientId}:${user.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope }),
    });
    expect(reply.status).toBe(200);
    return ((await reply.json()) as { access_token: string }).access_token;
  }

  const machine = (accessTokenType: 'bearer' | 'jwt', roles = ['admin']) =>
    idp.addMachineUser({ username: `svc-${randomBytes(6).toString('hex')}`, accessTokenType, roles });

  /** How many introspection calls the service made, from its own metrics. */
  async function introspections(): Promise<number> {
    const metrics = await t.http({ method: 'GET', url: '/metrics' });
    const line = metrics.body
      .split('\n')
      .find((l) => l.startsWith('zitadel_call_duration_seconds_count{operation="introspectToken"'));
    return line ? Number(line.split(' ').at(-1)) : 0;
  }

  beforeAll(async () => {
    t = await startTestApp({ ZITADEL_INTROSPECTION_CACHE_SECONDS: '30' });
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  it('accepts a machine user’s opaque token (introspected) and its JWT token (verified locally)', async () => {
    const opaque = await machineToken(await machine('bearer'));
    expect(opaque).not.toContain('.');
    const jwt = await machineToken(await machine('jwt'));
    expect(jwt.split('.')).toHaveLength(3);
    for (const token of [opaque, jwt]) {
      const list = await get('/api/users?limit=1', token);
      expect(list.statusCode).toBe(200);
    }
  });

  it('authorizes a service account by the roles Zitadel reports for it', async () => {
    const token = await machineToken(await machine('bearer', []));
    expect((await get('/api/users/me', token)).statusCode).not.toBe(401);
    expectProblem(await get('/api/users?limit=1', token), 403, 'forbidden');
  });

  it('reuses an active answer for a while instead of asking Zitadel on every call', async () => {
    const token = await machineToken(await machine('bearer'));
    const before = await introspections();
    for (let i = 0; i < 3; i++) expect((await get('/api/users?limit=1', token)).statusCode).toBe(200);
    expect((await introspections()) - before).toBe(1);
  });

  it('refuses an opaque token of a deactivated machine user, and one revoked before use', async () => {
    const user = await machine('bearer');
    const inactive = await machineToken(user);
    await idp.setMachineUserActive(user.userId, false);
    expectProblem(await get('/api/users?limit=1', inactive), 401, 'unauthorized');
    await idp.setMachineUserActive(user.userId, true);

    const revoked = await machineToken(user);
    const revocation = await fetch(new URL('/oauth/v2/revoke', idp.url), {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${user.clientId}:${user.clientSecret}`).toString('base64')}`,
      },
      body: new URLSearchParams({ token: revoked }),
    });
    expect(revocation.status).toBe(200);
    expectProblem(await get('/api/users?limit=1', revoked), 401, 'unauthorized');
    // An inactive answer is not cached: the user's other tokens keep working.
    expect((await get('/api/users?limit=1', await machineToken(user))).statusCode).toBe(200);
  });

  it('refuses an opaque token issued without this project in its audience', async () => {
    const token = await machineToken(await machine('bearer'), 'openid urn:zitadel:iam:org:projects:roles');
    expectProblem(await get('/api/users?limit=1', token), 401, 'unauthorized');
  });

  it('refuses a made-up opaque token and an ID token; a user’s JWT access token still works', async () => {
    expectProblem(await get('/api/users/me', randomBytes(32).toString('base64url')), 401, 'unauthorized');
    const user = await signedInUser(t);
    const { idToken, accessToken } = await zitadelTokens(t, user);
    expectProblem(await get('/api/users/me', idToken), 401, 'unauthorized');
    expect((await get('/api/users/me', accessToken)).statusCode).toBe(200);
  });

  it('refuses a bearer no Zitadel could have issued (huge, or not b64token) without asking Zitadel', async () => {
    const before = await introspections();
    for (const token of ['x'.repeat(60_000), 'short', 'has spaces and "quotes"', '%00'.repeat(20)]) {
      expectProblem(
        await t.http({ method: 'GET', url: '/api/users/me', headers: { authorization: `Bearer ${token}` } }),
        401,
        'unauthorized',
      );
    }
    expect(await introspections()).toBe(before);
  });
});
