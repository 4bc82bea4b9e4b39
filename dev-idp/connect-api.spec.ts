import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Code, ConnectError, createClient } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { NewAuthorizationBearerInterceptor } from '@zitadel/client';
import {
  createSessionServiceClient,
  createSettingsServiceClient,
  createUserServiceClient,
} from '@zitadel/client/v2';
import { State } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_pb.js';
import { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import { CredentialsCheckErrorSchema, ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { UserState } from '@zitadel/proto/zitadel/user/v2/user_pb.js';
import { STRONG_PASSWORD, type TestProvider, startTestProvider, uniqueEmail } from './test-support.js';

/** dev-idp's Connect services, called with Zitadel's own TypeScript client, as the service calls them. */
describe('dev-idp over Connect (Zitadel descriptors)', () => {
  let t: TestProvider;
  let users: ReturnType<typeof createUserServiceClient>;
  let sessions: ReturnType<typeof createSessionServiceClient>;
  let settings: ReturnType<typeof createSettingsServiceClient>;
  let authorizations: ReturnType<typeof createClient<typeof AuthorizationService>>;

  const transport = (token: string, binary = false) =>
    createConnectTransport({
      baseUrl: t.idp.url,
      httpVersion: '1.1',
      useBinaryFormat: binary,
      interceptors: [NewAuthorizationBearerInterceptor(token)],
    });
  const errorId = (error: unknown) =>
    [ErrorDetailSchema, CredentialsCheckErrorSchema].flatMap((d) => (error as ConnectError).findDetails(d))[0]
      ?.id;

  async function addUser(password?: string) {
    const email = uniqueEmail('connect');
    const { userId } = await users.addHumanUser({
      username: email,
      organization: { org: { case: 'orgId', value: t.idp.orgId } },
      profile: { givenName: 'Ada', familyName: 'Lovelace' },
      email: { email, verification: { case: 'isVerified', value: true } },
      passwordType: password ? { case: 'password', value: { password, changeRequired: false } } : undefined,
    });
    return { userId, email };
  }

  beforeAll(async () => {
    t = await startTestProvider();
    const tr = transport(t.idp.serviceAccountToken);
    users = createUserServiceClient(tr);
    sessions = createSessionServiceClient(tr);
    settings = createSettingsServiceClient(tr);
    authorizations = createClient(AuthorizationService, tr);
  });
  afterAll(() => t.idp.close());

  it('refuses a call without the service-account token as Zitadel does', async () => {
    const anonymous = createUserServiceClient(transport('not-the-token-at-all'));
    const error = await anonymous.getUserByID({ userId: '1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unauthenticated);
    expect(errorId(error)).toBe('AUTH-7fs1e');
  });

  it('adds, reads, lists, updates, locks and deletes a user with typed messages', async () => {
    const { userId, email } = await addUser(STRONG_PASSWORD);
    const { user } = await users.getUserByID({ userId });
    expect(user?.state).toBe(UserState.ACTIVE);
    expect(user?.type.case).toBe('human');
    expect(user?.type.case === 'human' && user.type.value.email?.email).toBe(email);

    await users.updateHumanUser({ userId, profile: { givenName: 'Augusta', familyName: 'King' } });
    const listed = await users.listUsers({
      query: { limit: 10 },
      queries: [{ query: { case: 'inUserIdsQuery', value: { userIds: [userId] } } }],
    });
    expect(listed.details?.totalResult).toBe(1n);
    const human = listed.result[0]?.type;
    expect(human?.case === 'human' && human.value.profile?.givenName).toBe('Augusta');

    await users.lockUser({ userId });
    const again = await users.lockUser({ userId }).catch((e: unknown) => e);
    expect((again as ConnectError).code).toBe(Code.FailedPrecondition);
    expect((await users.getUserByID({ userId })).user?.state).toBe(UserState.LOCKED);

    await users.deleteUser({ userId });
    const gone = await users.getUserByID({ userId }).catch((e: unknown) => e);
    expect((gone as ConnectError).code).toBe(Code.NotFound);
    expect(errorId(gone)).toBe('QUERY-Dfbg2');
  });

  it('answers the binary protocol as well as JSON', async () => {
    const binary = createUserServiceClient(transport(t.idp.serviceAccountToken, true));
    const { userId } = await addUser();
    expect((await binary.getUserByID({ userId })).user?.userId).toBe(userId);
  });

  it('checks a password in a session, wrong passwords with COMMAND-3M0fs', async () => {
    const { userId, email } = await addUser(STRONG_PASSWORD);
    const created = await sessions.createSession({
      checks: {
        user: { search: { case: 'loginName', value: email } },
        password: { password: STRONG_PASSWORD },
      },
      lifetime: { seconds: 300n },
    });
    const { session } = await sessions.getSession({
      sessionId: created.sessionId,
      sessionToken: created.sessionToken,
    });
    expect(session?.factors?.user?.id).toBe(userId);

    const wrong = await sessions
      .createSession({
        checks: {
          user: { search: { case: 'userId', value: userId } },
          password: { password: 'Wrong-Horse-1' },
        },
      })
      .catch((e: unknown) => e);
    expect((wrong as ConnectError).code).toBe(Code.InvalidArgument);
    expect(errorId(wrong)).toBe('COMMAND-3M0fs');

    await sessions.deleteSession({ sessionId: created.sessionId, sessionToken: created.sessionToken });
  });

  it('serves the login policy and the enrolled methods', async () => {
    const { settings: policy } = await settings.getLoginSettings({
      ctx: { resourceOwner: { case: 'orgId', value: t.idp.orgId } },
    });
    expect(policy?.allowUsernamePassword).toBe(true);
    expect(policy?.forceMfa).toBe(false);
    const { userId } = await addUser(STRONG_PASSWORD);
    const methods = await users.listAuthenticationMethodTypes({ userId });
    expect(methods.authMethodTypes).toHaveLength(1);
  });

  it('keeps roles as AuthorizationService v2beta authorizations', async () => {
    const { userId } = await addUser();
    const byUser = () =>
      authorizations.listAuthorizations({
        filters: [
          { filter: { case: 'userId', value: { id: userId } } },
          { filter: { case: 'projectId', value: { id: t.idp.projectId } } },
        ],
      });
    expect((await byUser()).authorizations).toEqual([]);

    const { id } = await authorizations.createAuthorization({
      userId,
      projectId: t.idp.projectId,
      organizationId: t.idp.orgId,
      roleKeys: ['user', 'manager'],
    });
    const duplicate = await authorizations
      .createAuthorization({ userId, projectId: t.idp.projectId, roleKeys: ['user'] })
      .catch((e: unknown) => e);
    expect((duplicate as ConnectError).code).toBe(Code.AlreadyExists);

    let listed = await byUser();
    expect(listed.pagination?.totalResult).toBe(1n);
    expect(listed.authorizations[0]).toMatchObject({
      id,
      projectId: t.idp.projectId,
      organizationId: t.idp.orgId,
      state: State.ACTIVE,
      roles: ['user', 'manager'],
      user: { id: userId },
    });

    await authorizations.updateAuthorization({ id, roleKeys: ['admin'] });
    await authorizations.deactivateAuthorization({ id });
    await authorizations.deactivateAuthorization({ id });
    listed = await byUser();
    expect(listed.authorizations[0]).toMatchObject({ roles: ['admin'], state: State.INACTIVE });

    await authorizations.deleteAuthorization({ id });
    // "In case the authorization is not found, the request will return a successful response."
    await authorizations.deleteAuthorization({ id });
    expect((await byUser()).authorizations).toEqual([]);
  });
});
