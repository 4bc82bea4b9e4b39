import { describe, expect, it } from '@jest/globals';
import { type JSONWebKeySet, createLocalJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import {
  apiClient,
  createUser,
  exchangeCode,
  signIn,
  startTestProvider,
  testDatabaseUrl,
} from './test-support.js';

async function jwksOf(url: string): Promise<JSONWebKeySet> {
  return (await (await fetch(`${url}/oauth/v2/keys`)).json()) as JSONWebKeySet;
}

describe('dev-idp persistence', () => {
  it('keeps users, the service account token and the signing key across a restart', async () => {
    const first = await startTestProvider();
    const user = await createUser(first.idp);
    const a = await signIn(first.idp, { loginName: user.email, password: user.password });
    const token = await exchangeCode(first.idp, {
      code: a.location.searchParams.get('code') ?? '',
      client_id: 'web-app',
      code_verifier: a.verifier,
    });
    const before = await jwksOf(first.idp.url);
    const port = Number(new URL(first.idp.url).port);
    await first.idp.close();

    // Same port, hence the same issuer: tokens from before the restart must still be accepted.
    const second = await startTestProvider({ port });
    try {
      const after = await jwksOf(second.idp.url);
      expect(after.keys.map((k) => k.kid)).toEqual(before.keys.map((k) => k.kid));
      expect(second.idp.serviceAccountToken).toBe(first.idp.serviceAccountToken);
      expect(second.idp.issuer).toBe(first.idp.issuer);

      const got = await apiClient(second.idp)('getUserByID', { userId: user.userId });
      expect(got.code).toBe(0);
      expect(got.body.user).toMatchObject({ userId: user.userId, username: user.username });

      const verified = await jwtVerify(String(token.body.id_token), createLocalJWKSet(after), {
        issuer: second.idp.issuer,
      });
      expect(verified.payload.sub).toBe(user.userId);
      const info = await fetch(`${second.idp.url}/oidc/v1/userinfo`, {
        headers: { authorization: `Bearer ${String(token.body.access_token)}` },
      });
      expect(info.status).toBe(200);

      const session = await apiClient(second.idp)('createSession', {
        checks: { user: { loginName: user.email }, password: { password: user.password } },
      });
      expect(session.code).toBe(0);
    } finally {
      await second.idp.close();
    }
  });

  it('starts several instances at once on one database, sharing one key', async () => {
    const started = await Promise.all([startTestProvider(), startTestProvider(), startTestProvider()]);
    try {
      const kids = await Promise.all(started.map(async (s) => (await jwksOf(s.idp.url)).keys[0]?.kid));
      expect(new Set(kids).size).toBe(1);
    } finally {
      await Promise.all(started.map((s) => s.idp.close()));
    }
  });

  it('keeps all its state in schema dev_idp', async () => {
    const client = new pg.Client({ connectionString: testDatabaseUrl() });
    await client.connect();
    try {
      const { rows } = await client.query<{ table_name: string }>(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'dev_idp' ORDER BY table_name",
      );
      expect(rows.map((r) => r.table_name)).toEqual(
        expect.arrayContaining([
          'users',
          'user_grants',
          'sessions',
          'signing_keys',
          'settings',
          'auth_codes',
        ]),
      );
      const passwords = await client.query<{ password_hash: string }>(
        'SELECT password_hash FROM dev_idp.users WHERE password_hash IS NOT NULL LIMIT 5',
      );
      for (const row of passwords.rows) expect(row.password_hash).toMatch(/^\$argon2id\$/);
    } finally {
      await client.end();
    }
  });

  it('refuses to listen beyond loopback and rejects bad options', async () => {
    await expect(startTestProvider({ host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    await expect(
      startTestProvider({ clients: [{ clientId: 'x', redirectUris: ['not a url'] }] }),
    ).rejects.toThrow(/invalid option/);
    await expect(
      startTestProvider({ admin: { email: 'weak@example.test', password: 'weak' } }),
    ).rejects.toThrow(/password policy/);
  });
});
