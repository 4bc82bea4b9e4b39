import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  type TestProvider,
  apiClient,
  expectZitadelError,
  startTestProvider,
  uniqueEmail,
} from './test-support.js';

describe('dev-idp organizations (org v2)', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  const addUser = (orgId: string, email = uniqueEmail('org')) =>
    api('addHumanUser', {
      organization: { orgId },
      profile: { givenName: 'Org', familyName: 'Member' },
      email: { email, isVerified: true },
      password: { password: 'Correct-Horse-9', changeRequired: false },
    });

  it('adds organizations, lists them with the configured one, and refuses a duplicate name', async () => {
    const name = `Acme ${uniqueEmail('n')}`;
    const added = await api('addOrganization', { name });
    expect(added.code).toBe(0);
    const orgId = String(added.body.organizationId);
    expect(orgId).toMatch(/^\d+$/);
    expectZitadelError(
      await api('addOrganization', { name: name.toUpperCase() }),
      Code.AlreadyExists,
      'ORG-lapo2m',
    );
    expectZitadelError(await api('addOrganization', { name: ' ' }), Code.InvalidArgument);

    const listed = await api('listOrganizations', { query: { limit: 1000, asc: true } });
    const ids = (listed.body.result as { id: string }[]).map((org) => org.id);
    expect(ids).toEqual(expect.arrayContaining([t.idp.orgId, orgId]));
    expect(Number(listed.body.details && (listed.body.details as { totalResult: string }).totalResult)).toBe(
      ids.length,
    );
  });

  it('keeps users and their grants in their organization', async () => {
    const orgId = String((await api('addOrganization', { name: uniqueEmail('o') })).body.organizationId);
    const created = await addUser(orgId);
    expect(created.code).toBe(0);
    const userId = String(created.body.userId);
    expect((await api('getUserByID', { userId: userId })).body).toMatchObject({
      user: { userId, details: { resourceOwner: orgId } },
    });
    // ListUsers by organization.
    const inOrg = await api('listUsers', {
      queries: [{ organizationIdQuery: { organizationId: orgId } }],
    });
    expect((inOrg.body.result as { userId: string }[]).map((u) => u.userId)).toEqual([userId]);

    // The authorization belongs to the user's organization; another one is refused.
    const create = (organizationId: string) =>
      api('createAuthorization', {
        userId,
        projectId: t.idp.projectId,
        organizationId,
        roleKeys: ['manager'],
      });
    expectZitadelError(await create(t.idp.orgId), Code.NotFound, 'AUTHZ-Org404');
    expect((await create(orgId)).code).toBe(0);
    const search = async (org: string) =>
      (
        await api('listAuthorizations', {
          filters: [{ userId: { id: userId } }, { organizationId: { id: org } }],
        })
      ).body.authorizations;
    expect(await search(orgId)).toMatchObject([{ organizationId: orgId, roles: ['manager'] }]);
    expect(await search(t.idp.orgId)).toEqual([]);
  });

  it('refuses a user in an organization that does not exist', async () => {
    expectZitadelError(await addUser('999999999999999999'), Code.NotFound, 'QUERY-iTTGJ');
  });
});
