import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MAX_PASSWORD_ATTEMPTS } from './credentials.js';
import {
  STRONG_PASSWORD,
  type TestProvider,
  apiClient,
  createUser,
  startTestProvider,
} from './test-support.js';

function errorId(body: Record<string, unknown>): unknown {
  return (body.details as Array<{ id: string }>)[0]?.id;
}

describe('dev-idp session service v2', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;
  const createSession = (loginName: string, password?: string) =>
    api('POST', '/v2/sessions', {
      checks: { user: { loginName }, ...(password === undefined ? {} : { password: { password } }) },
      userAgent: { ip: '127.0.0.1', description: 'jest', header: { 'user-agent': { values: ['jest'] } } },
      lifetime: '18000s',
    });

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  it('creates a session for the right password (201) and returns it by id', async () => {
    const user = await createUser(t.idp);
    const res = await createSession(user.email.toUpperCase(), user.password);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      sessionId: expect.stringMatching(/^\d+$/),
      sessionToken: expect.any(String),
      details: { sequence: '1', resourceOwner: t.idp.orgId },
    });
    const got = await api('GET', `/v2/sessions/${String(res.body.sessionId)}`);
    expect(got.status).toBe(200);
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
    const withToken = await api(
      'GET',
      `/v2/sessions/${String(res.body.sessionId)}?sessionToken=${encodeURIComponent(String(res.body.sessionToken))}`,
    );
    expect(withToken.status).toBe(200);
    expect((await api('GET', `/v2/sessions/${String(res.body.sessionId)}?sessionToken=wrong`)).status).toBe(
      403,
    );
  });

  it('accepts a userId check and a user check without password', async () => {
    const user = await createUser(t.idp);
    const res = await api('POST', '/v2/sessions', { checks: { user: { userId: user.userId } } });
    expect(res.status).toBe(201);
    const got = await api('GET', `/v2/sessions/${String(res.body.sessionId)}`);
    expect((got.body.session as { factors: Record<string, unknown> }).factors.password).toBeUndefined();
  });

  it('rejects a wrong password with COMMAND-3M0fs and counts the attempt', async () => {
    const user = await createUser(t.idp);
    const res = await createSession(user.email, 'Wrong-Password-1');
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 3, message: 'Password is invalid (COMMAND-3M0fs)' });
    expect((res.body.details as Array<Record<string, unknown>>)[0]).toMatchObject({
      '@type': 'type.googleapis.com/zitadel.v1.CredentialsCheckError',
      id: 'COMMAND-3M0fs',
      failedAttempts: 1,
    });
  });

  it('answers NotFound for an unknown login name', async () => {
    const res = await createSession('nobody-here@example.test', STRONG_PASSWORD);
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 5 });
  });

  it('refuses a locked user with COMMAND-JLK35', async () => {
    const user = await createUser(t.idp);
    await api('POST', `/v2/users/${user.userId}/lock`, {});
    const res = await createSession(user.email, user.password);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 9 });
    expect(errorId(res.body)).toBe('COMMAND-JLK35');
  });

  it('refuses a deactivated user with FailedPrecondition, even with the right password', async () => {
    const user = await createUser(t.idp);
    await api('POST', `/v2/users/${user.userId}/deactivate`, {});
    const res = await createSession(user.email, user.password);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 9 });
    expect(errorId(res.body)).toBe('COMMAND-vgDIu');
  });

  it('refuses a password check for a user without password', async () => {
    const user = await createUser(t.idp, { password: null });
    const res = await createSession(user.email, STRONG_PASSWORD);
    expect(res.status).toBe(400);
    expect(errorId(res.body)).toBe('COMMAND-3nJ4t');
  });

  it(`locks the user after ${MAX_PASSWORD_ATTEMPTS} consecutive wrong passwords`, async () => {
    const user = await createUser(t.idp);
    // A success in between resets the count.
    await createSession(user.email, 'Wrong-Password-1');
    expect((await createSession(user.email, user.password)).status).toBe(201);
    const ids: unknown[] = [];
    for (let i = 0; i < MAX_PASSWORD_ATTEMPTS; i++)
      ids.push(errorId((await createSession(user.email, 'Nope-123!')).body));
    expect(ids.slice(0, -1).every((id) => id === 'COMMAND-3M0fs')).toBe(true);
    expect(ids.at(-1)).toBe('COMMAND-SFA3t');
    expect((await api('GET', `/v2/users/${user.userId}`)).body.user).toMatchObject({
      state: 'USER_STATE_LOCKED',
    });
    expect(errorId((await createSession(user.email, user.password)).body)).toBe('COMMAND-JLK35');
    await api('POST', `/v2/users/${user.userId}/unlock`, {});
    expect((await createSession(user.email, user.password)).status).toBe(201);
  });

  it('deletes a session, checking the session token when one is given', async () => {
    const user = await createUser(t.idp);
    const created = await createSession(user.email, user.password);
    const id = String(created.body.sessionId);
    expect((await api('DELETE', `/v2/sessions/${id}`, { sessionToken: 'wrong' })).status).toBe(403);
    const deleted = await api('DELETE', `/v2/sessions/${id}`, { sessionToken: created.body.sessionToken });
    expect(deleted.status).toBe(200);
    expect(deleted.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
    expect((await api('GET', `/v2/sessions/${id}`)).status).toBe(404);
  });

  it('lists sessions by user id', async () => {
    const user = await createUser(t.idp);
    await createSession(user.email, user.password);
    await createSession(user.email, user.password);
    const res = await api('POST', '/v2/sessions/search', { queries: [{ userIdQuery: { id: user.userId } }] });
    expect(res.status).toBe(200);
    expect(res.body.details).toMatchObject({ totalResult: '2' });
    expect(res.body.sessions).toHaveLength(2);
  });

  it('validates the request body', async () => {
    expect((await api('POST', '/v2/sessions', { checks: { user: {} } })).status).toBe(400);
    expect(
      (await api('POST', '/v2/sessions', { checks: { user: { loginName: 'x' } }, lifetime: '5h' })).status,
    ).toBe(400);
    expect((await api('POST', '/v2/sessions', {})).status).toBe(400);
  });
});
