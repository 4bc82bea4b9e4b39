import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_PASSWORD_ATTEMPTS } from './credentials.js';
import {
  type RpcResult,
  STRONG_PASSWORD,
  type TestProvider,
  apiClient,
  createUser,
  expectZitadelError,
  rawConnect,
  startTestProvider,
} from './test-support.js';

const errorId = (result: RpcResult) => result.error?.id;

describe('dev-idp session service v2', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;
  const createSession = (loginName: string, password?: string) =>
    api('createSession', {
      checks: { user: { loginName }, ...(password === undefined ? {} : { password: { password } }) },
      userAgent: { ip: '127.0.0.1', description: 'jest', header: { 'user-agent': { values: ['jest'] } } },
      lifetime: '18000s',
    });

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  it('creates a session for the right password and returns it by id', async () => {
    const user = await createUser(t.idp);
    const res = await createSession(user.email.toUpperCase(), user.password);
    expect(res.code).toBe(0);
    expect(res.body).toMatchObject({
      sessionId: expect.stringMatching(/^\d+$/),
      sessionToken: expect.any(String),
      details: { sequence: '1', resourceOwner: t.idp.orgId },
    });
    const got = await api('getSession', { sessionId: String(res.body.sessionId) });
    expect(got.code).toBe(0);
    expect(got.body.session).toMatchObject({
      id: res.body.sessionId,
      sequence: '1',
      factors: {
        user: {
          id: user.userId,
          loginName: user.username,
          displayName: 'Test User',
          organizationId: t.idp.orgId,
        },
        password: { verifiedAt: expect.any(String) },
      },
      expirationDate: expect.any(String),
    });
    const sessionId = String(res.body.sessionId);
    const withToken = await api('getSession', { sessionId, sessionToken: String(res.body.sessionToken) });
    expect(withToken.code).toBe(0);
    expectZitadelError(
      await api('getSession', { sessionId, sessionToken: 'wrong' }),
      Code.PermissionDenied,
      'COMMAND-sGr42',
    );
  });

  it('accepts a userId check and a user check without password', async () => {
    const user = await createUser(t.idp);
    const res = await api('createSession', { checks: { user: { userId: user.userId } } });
    expect(res.code).toBe(0);
    const got = await api('getSession', { sessionId: String(res.body.sessionId) });
    expect((got.body.session as { factors: Record<string, unknown> }).factors.password).toBeUndefined();
  });

  it('rejects a wrong password with COMMAND-3M0fs and counts the attempt', async () => {
    const user = await createUser(t.idp);
    const res = await createSession(user.email, 'Wrong-Password-1');
    expectZitadelError(res, Code.InvalidArgument, 'COMMAND-3M0fs');
    // Zitadel's zitadel.v1.CredentialsCheckError detail, with the count.
    expect(res.error).toMatchObject({
      $typeName: 'zitadel.v1.CredentialsCheckError',
      message: 'Password is invalid',
      failedAttempts: 1,
    });
  });

  it('answers NotFound for an unknown login name', async () => {
    const res = await createSession('nobody-here@example.test', STRONG_PASSWORD);
    expectZitadelError(res, Code.NotFound, 'QUERY-Dfbg2');
  });

  it('refuses a locked user with COMMAND-JLK35', async () => {
    const user = await createUser(t.idp);
    await api('lockUser', { userId: user.userId });
    const res = await createSession(user.email, user.password);
    expectZitadelError(res, Code.FailedPrecondition, 'COMMAND-JLK35');
  });

  it('refuses a deactivated user with FailedPrecondition, even with the right password', async () => {
    const user = await createUser(t.idp);
    await api('deactivateUser', { userId: user.userId });
    const res = await createSession(user.email, user.password);
    expectZitadelError(res, Code.FailedPrecondition, 'COMMAND-vgDIu');
  });

  it('refuses a password check for a user without password', async () => {
    const user = await createUser(t.idp, { password: null });
    const res = await createSession(user.email, STRONG_PASSWORD);
    expectZitadelError(res, Code.FailedPrecondition, 'COMMAND-3nJ4t');
  });

  it(`locks the user after ${MAX_PASSWORD_ATTEMPTS} consecutive wrong passwords`, async () => {
    const user = await createUser(t.idp);
    // A success in between resets the count.
    await createSession(user.email, 'Wrong-Password-1');
    expect((await createSession(user.email, user.password)).code).toBe(0);
    const ids: unknown[] = [];
    for (let i = 0; i < MAX_PASSWORD_ATTEMPTS; i++)
      ids.push(errorId(await createSession(user.email, 'Nope-123!')));
    expect(ids.slice(0, -1).every((id) => id === 'COMMAND-3M0fs')).toBe(true);
    expect(ids.at(-1)).toBe('COMMAND-SFA3t');
    expect((await api('getUserByID', { userId: user.userId })).body.user).toMatchObject({
      state: 'USER_STATE_LOCKED',
    });
    expect(errorId(await createSession(user.email, user.password))).toBe('COMMAND-JLK35');
    await api('unlockUser', { userId: user.userId });
    expect((await createSession(user.email, user.password)).code).toBe(0);
  });

  it('deletes a session, checking the session token when one is given', async () => {
    const user = await createUser(t.idp);
    const created = await createSession(user.email, user.password);
    const id = String(created.body.sessionId);
    expectZitadelError(
      await api('deleteSession', { sessionId: id, sessionToken: 'wrong' }),
      Code.PermissionDenied,
    );
    const deleted = await api('deleteSession', {
      sessionId: id,
      sessionToken: String(created.body.sessionToken),
    });
    expect(deleted.code).toBe(0);
    expect(deleted.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
    expectZitadelError(await api('getSession', { sessionId: id }), Code.NotFound, 'QUERY-SFeaa');
  });

  it('lists sessions by user id', async () => {
    const user = await createUser(t.idp);
    await createSession(user.email, user.password);
    await createSession(user.email, user.password);
    const res = await api('listSessions', { queries: [{ userIdQuery: { id: user.userId } }] });
    expect(res.code).toBe(0);
    expect(res.body.details).toMatchObject({ totalResult: '2' });
    expect(res.body.sessions).toHaveLength(2);
  });

  it('validates the request body', async () => {
    expect((await api('createSession', { checks: { user: {} } })).code).toBe(Code.InvalidArgument);
    expect((await api('createSession', { checks: { user: { loginName: 'x' } }, lifetime: '0s' })).code).toBe(
      Code.InvalidArgument,
    );
    expect(
      await rawConnect(t.idp, 'zitadel.session.v2.SessionService/CreateSession', '{"lifetime": "5h"}'),
    ).toEqual({ status: 400, code: 'invalid_argument' });
    expect((await api('createSession', {})).code).toBe(Code.InvalidArgument);
  });
});
