import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type TestProvider, startTestProvider } from '../../dev-idp/test-support.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { checkZitadel } from './zitadel-check.js';

describe('npm run zitadel:check (against the stand-in)', () => {
  let t: TestProvider;
  const api = { clientId: 'users-api-check', clientSecret: 'check-secret-0123456789' };
  const connection = (overrides: Partial<ZitadelConnection> = {}): ZitadelConnection => ({
    url: t.idp.url,
    orgId: t.idp.orgId,
    projectId: t.idp.projectId,
    clientId: 'web-app',
    redirectUri: 'http://127.0.0.1:3999/auth/callback',
    credentials: { pat: t.idp.serviceAccountToken },
    introspection: api,
    timeoutMs: 5_000,
    retries: 0,
    ...overrides,
  });

  beforeAll(async () => {
    t = await startTestProvider({ apiApps: [api], admin: { email: 'check-admin@example.test' } });
  });
  afterAll(() => t.idp.close());

  it('reports every needed API as working with good credentials', async () => {
    const results = await checkZitadel(connection());
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.map((r) => r.name).join('\n')).toMatch(
      /ListUsers[\s\S]*ListAuthorizations[\s\S]*introspection/,
    );
  });

  it('says which calls fail, and why, with a refused token and without introspection credentials', async () => {
    const results = await checkZitadel(
      connection({ credentials: { pat: 'not-the-service-account-token' }, introspection: undefined }),
    );
    const failed = results.filter((r) => !r.ok);
    expect(failed.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        expect.stringContaining('ListUsers'),
        expect.stringContaining('introspection'),
      ]),
    );
    expect(failed.find((r) => r.name.includes('ListUsers'))?.detail).toContain('credentials are refused');
    expect(results.find((r) => r.name.includes('discovery'))?.ok).toBe(true);
  });
});
