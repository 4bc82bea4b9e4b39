import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type TestProvider, apiClient, startTestProvider, uniqueEmail } from './test-support.js';

describe('dev-idp organizations (org v2)', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  const addUser = (orgId: string, email = uniqueEmail('org')) =>
    api('POST', '/v2/users/human', {
      organization: { orgId },
      profile: { givenName: 'Org', familyName: 'Member' },
      email: { email, isVerified: true },
      password: { password: 'Correct-Horse-9', changeRequired: false },
    });

  it('adds organizations, lists them with the configured one, and refuses a duplicate name', async () => {
    const name = `Acme ${uniqueEmail('n')}`;
    const added = await api('POST', '/v2/organizations', { name });
    expect(added.status).toBe(201);
    const orgId = String(added.body.organizationId);
    expect(orgId).toMatch(/^\d+$/);
    expect((await api('POST', '/v2/organizations', { name: name.toUpperCase() })).status).toBe(409);

    const listed = await api('POST', '/v2/organizations/_search', { query: { limit: 1000, asc: true } });
    const ids = (listed.body.result as { id: string }[]).map((org) => org.id);
    expect(ids).toEqual(expect.arrayContaining([t.idp.orgId, orgId]));
    expect(Number(listed.body.details && (listed.body.details as { totalResult: string }).totalResult)).toBe(
      ids.length,
    );
  });

  it('keeps users and their grants in their organization', async () => {
    const orgId = String(
      (await api('POST', '/v2/organizations', { name: uniqueEmail('o') })).body.organizationId,
    );
    const created = await addUser(orgId);
    expect(created.status).toBe(201);
    const userId = String(created.body.userId);
    expect((await api('GET', `/v2/users/${userId}`)).body).toMatchObject({
      user: { userId, details: { resourceOwner: orgId } },
    });
    // ListUsers by organization.
    const inOrg = await api('POST', '/v2/users', {
      queries: [{ organizationIdQuery: { organizationId: orgId } }],
    });
    expect((inOrg.body.result as { userId: string }[]).map((u) => u.userId)).toEqual([userId]);

    await api('POST', `/management/v1/users/${userId}/grants`, {
      projectId: t.idp.projectId,
      roleKeys: ['manager'],
    });
    const search = (org: string) =>
      fetch(`${t.idp.url}/management/v1/users/grants/_search`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${t.idp.serviceAccountToken}`,
          'content-type': 'application/json',
          'x-zitadel-orgid': org,
        },
        body: JSON.stringify({ queries: [{ userIdQuery: { userId } }] }),
      }).then((r) => r.json() as Promise<{ result: { orgId: string; roleKeys: string[] }[] }>);
    expect((await search(orgId)).result).toMatchObject([{ orgId, roleKeys: ['manager'] }]);
    expect((await search(t.idp.orgId)).result).toEqual([]);
  });

  it('refuses a user in an organization that does not exist', async () => {
    expect((await addUser('999999999999999999')).status).toBe(404);
  });
});
