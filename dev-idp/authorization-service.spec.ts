import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  type TestProvider,
  apiClient,
  createUser,
  expectZitadelError,
  startTestProvider,
  uniqueEmail,
} from './test-support.js';

/** The lifecycle (create, list, update, (de)activate, delete) is in connect-api.spec.ts, with typed messages. */
describe('dev-idp roles (AuthorizationService v2beta)', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;
  const byUser = async (userId: string) =>
    (
      await api('listAuthorizations', {
        filters: [{ userId: { id: userId } }, { projectId: { id: t.idp.projectId } }],
      })
    ).body;

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  it('lists an authorization with its user, project, organization, dates and roles', async () => {
    const user = await createUser(t.idp);
    const created = await api('createAuthorization', {
      userId: user.userId,
      projectId: t.idp.projectId,
      roleKeys: ['user', 'manager'],
    });
    expect(created.body).toMatchObject({
      id: expect.stringMatching(/^\d+$/),
      creationDate: expect.any(String),
    });
    expect(await byUser(user.userId)).toMatchObject({
      pagination: { totalResult: '1', appliedLimit: '100' },
      authorizations: [
        {
          id: created.body.id,
          projectId: t.idp.projectId,
          projectName: 'users-api',
          organizationId: t.idp.orgId,
          state: 'STATE_ACTIVE',
          roles: ['user', 'manager'],
          user: { id: user.userId, preferredLoginName: user.username, organizationId: t.idp.orgId },
        },
      ],
    });
  });

  it('finds authorizations by role key and by state', async () => {
    const user = await createUser(t.idp);
    const role = `role-${Date.now()}`;
    const { body } = await api('createAuthorization', {
      userId: user.userId,
      projectId: t.idp.projectId,
      roleKeys: [role],
    });
    const search = async (filters: object[]) =>
      (
        (await api('listAuthorizations', { filters })).body.authorizations as Array<{ user: { id: string } }>
      ).map((a) => a.user.id);
    expect(await search([{ roleKey: { key: role, method: 'TEXT_FILTER_METHOD_EQUALS' } }])).toEqual([
      user.userId,
    ]);
    expect(
      await search([{ roleKey: { key: role.toUpperCase(), method: 'TEXT_FILTER_METHOD_EQUALS' } }]),
    ).toEqual([]);
    await api('deactivateAuthorization', { id: String(body.id) });
    const inactive = { state: { state: 'STATE_INACTIVE' } };
    expect(await search([{ roleKey: { key: role } }, inactive])).toEqual([user.userId]);
    expect(await search([{ roleKey: { key: role } }, { state: { state: 'STATE_ACTIVE' } }])).toEqual([]);
  });

  it('refuses a second authorization on the project, unknown projects and users, and bad role keys', async () => {
    const user = await createUser(t.idp);
    const add = (body: object) =>
      api('createAuthorization', { userId: user.userId, projectId: t.idp.projectId, ...body });
    expect((await add({ roleKeys: ['user'] })).code).toBe(0);
    expectZitadelError(await add({ roleKeys: ['admin'] }), Code.AlreadyExists, 'COMMAND-2N9ds');
    expectZitadelError(await add({ projectId: '999', roleKeys: ['user'] }), Code.NotFound, 'AUTHZ-Bp0lf');
    expectZitadelError(await add({ userId: '404404', roleKeys: ['user'] }), Code.NotFound, 'QUERY-Dfbg2');
    expectZitadelError(await add({ roleKeys: ['a', 'a'] }), Code.InvalidArgument, 'DEVIDP-VALID');
    expectZitadelError(await add({ roleKeys: [' '] }), Code.InvalidArgument, 'DEVIDP-VALID');
    expectZitadelError(
      await api('updateAuthorization', { id: '1', roleKeys: ['x'] }),
      Code.NotFound,
      'AUTHZ-5Zqc0',
    );
    expectZitadelError(
      await api('listAuthorizations', { filters: [{ projectName: { name: 'x' } }] }),
      Code.FailedPrecondition,
      'DEVIDP-FILTER',
    );
  });

  it('needs the service account token', async () => {
    expectZitadelError(
      await apiClient(t.idp, null)('listAuthorizations', {}),
      Code.Unauthenticated,
      'AUTH-7mr9m',
    );
    expectZitadelError(
      await apiClient(t.idp, 'x'.repeat(64))('listAuthorizations', {}),
      Code.Unauthenticated,
      'AUTH-7fs1e',
    );
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
      const found = await api('listUsers', { queries: [{ emailQuery: { emailAddress: email } }] });
      const admin = (
        found.body.result as Array<{ userId: string; human: { email: { isVerified: boolean } } }>
      )[0];
      expect(admin?.human.email.isVerified).toBe(true);
      expect((await byUser(admin?.userId ?? '')).authorizations).toMatchObject([{ roles: ['admin'] }]);
      const session = await api('createSession', {
        checks: { user: { loginName: email }, password: { password } },
      });
      expect(session.code).toBe(0);
    } finally {
      await first.idp.close();
    }
    const second = await startTestProvider({ admin: { email } });
    await second.idp.close();
    expect(second.logs.some((line) => line.includes('created admin'))).toBe(false);
  });
});
