import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { type TestProvider, apiClient, createUser, startTestProvider, uniqueEmail } from './test-support.js';

describe('dev-idp user grants (management API v1)', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;
  const search = (userId: string, projectId = t.idp.projectId) =>
    api('POST', '/management/v1/users/grants/_search', {
      query: { limit: 10 },
      queries: [{ userIdQuery: { userId } }, { projectIdQuery: { projectId } }],
    });

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  it('adds a grant, lists it by user and project, updates and removes it', async () => {
    const user = await createUser(t.idp);
    expect((await search(user.userId)).body).toMatchObject({ details: { totalResult: '0' }, result: [] });

    const added = await api('POST', `/management/v1/users/${user.userId}/grants`, {
      projectId: t.idp.projectId,
      roleKeys: ['user', 'manager'],
    });
    expect(added.status).toBe(200);
    expect(added.body.userGrantId).toMatch(/^\d+$/);
    const grantId = String(added.body.userGrantId);

    const listed = await search(user.userId);
    expect(listed.body.details).toMatchObject({ totalResult: '1' });
    expect((listed.body.result as unknown[])[0]).toMatchObject({
      id: grantId,
      userId: user.userId,
      projectId: t.idp.projectId,
      orgId: t.idp.orgId,
      roleKeys: ['user', 'manager'],
      state: 'USER_GRANT_STATE_ACTIVE',
      userName: user.username,
      email: user.email,
      details: { sequence: '1', resourceOwner: t.idp.orgId },
    });

    const updated = await api('PUT', `/management/v1/users/${user.userId}/grants/${grantId}`, {
      roleKeys: ['admin'],
    });
    expect(updated.status).toBe(200);
    expect(updated.body.details).toMatchObject({ sequence: '2' });
    const byId = await api('GET', `/management/v1/users/${user.userId}/grants/${grantId}`);
    expect(byId.body.userGrant).toMatchObject({ roleKeys: ['admin'] });

    expect(
      (await api('POST', `/management/v1/users/${user.userId}/grants/${grantId}/_deactivate`, {})).status,
    ).toBe(200);
    expect((await search(user.userId)).body.result).toMatchObject([{ state: 'USER_GRANT_STATE_INACTIVE' }]);
    expect(
      (await api('POST', `/management/v1/users/${user.userId}/grants/${grantId}/_deactivate`, {})).status,
    ).toBe(400);
    expect(
      (await api('POST', `/management/v1/users/${user.userId}/grants/${grantId}/_reactivate`, {})).status,
    ).toBe(200);

    expect((await api('DELETE', `/management/v1/users/${user.userId}/grants/${grantId}`)).status).toBe(200);
    expect((await search(user.userId)).body.result).toEqual([]);
    expect((await api('GET', `/management/v1/users/${user.userId}/grants/${grantId}`)).status).toBe(404);
  });

  it('finds grants by role key', async () => {
    const user = await createUser(t.idp);
    const role = `role-${Date.now()}`;
    await api('POST', `/management/v1/users/${user.userId}/grants`, {
      projectId: t.idp.projectId,
      roleKeys: [role],
    });
    const res = await api('POST', '/management/v1/users/grants/_search', {
      queries: [{ roleKeyQuery: { roleKey: role, method: 'TEXT_QUERY_METHOD_EQUALS' } }],
    });
    expect((res.body.result as Array<{ userId: string }>).map((g) => g.userId)).toEqual([user.userId]);
  });

  it('refuses a second grant on the same project, unknown projects and unknown users', async () => {
    const user = await createUser(t.idp);
    const add = (body: unknown, userId = user.userId) =>
      api('POST', `/management/v1/users/${userId}/grants`, body);
    expect((await add({ projectId: t.idp.projectId, roleKeys: ['user'] })).status).toBe(200);
    const again = await add({ projectId: t.idp.projectId, roleKeys: ['admin'] });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 6 });
    expect((await add({ projectId: '999', roleKeys: ['user'] })).body).toMatchObject({ code: 9 });
    expect((await add({ projectId: t.idp.projectId }, '404404')).body).toMatchObject({ code: 9 });
    expect((await add({ roleKeys: ['user'] })).status).toBe(400);
    expect((await add({ projectId: t.idp.projectId, roleKeys: ['a', 'a'] })).status).toBe(400);
  });

  it('needs the service account token', async () => {
    const res = await apiClient(t.idp, null)('POST', '/management/v1/users/grants/_search', {});
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ code: 16 });
  });

  it('gives the bootstrap admin the project role admin, once', async () => {
    const email = uniqueEmail('admin');
    const first = await startTestProvider({ admin: { email } });
    try {
      const created = first.logs.filter((line) => line.includes(`created admin ${email}`));
      expect(created).toHaveLength(1);
      // The generated password is logged once, at creation, and satisfies the policy.
      const password = /generated password: (\S+)$/.exec(created[0] ?? '')?.[1];
      expect(password).toMatch(/^(?=.*[a-z])(?=.*[A-Z])(?=.*\d)(?=.*[^A-Za-z0-9]).{20}$/);
      const found = await api('POST', '/v2/users', { queries: [{ emailQuery: { emailAddress: email } }] });
      const admin = (
        found.body.result as Array<{ userId: string; human: { email: { isVerified: boolean } } }>
      )[0];
      expect(admin?.human.email.isVerified).toBe(true);
      expect((await search(admin?.userId ?? '')).body.result).toMatchObject([{ roleKeys: ['admin'] }]);
      const session = await api('POST', '/v2/sessions', {
        checks: { user: { loginName: email }, password: { password } },
      });
      expect(session.status).toBe(201);
    } finally {
      await first.idp.close();
    }
    const second = await startTestProvider({ admin: { email } });
    await second.idp.close();
    expect(second.logs.some((line) => line.includes('created admin'))).toBe(false);
  });
});
