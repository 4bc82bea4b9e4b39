import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  STRONG_PASSWORD,
  type TestProvider,
  apiClient,
  createUser,
  startTestProvider,
  uniqueEmail,
} from './test-support.js';

function expectZitadelError(
  response: { status: number; body: Record<string, unknown> },
  status: number,
  code: number,
  id?: string,
): void {
  expect({ status: response.status, body: response.body }).toMatchObject({ status, body: { code } });
  const details = response.body.details as Array<Record<string, unknown>>;
  expect(details[0]).toMatchObject({ '@type': expect.stringContaining('type.googleapis.com/zitadel.v1.') });
  expect(typeof details[0]?.id).toBe('string');
  expect(response.body.message).toBe(`${String(details[0]?.message)} (${String(details[0]?.id)})`);
  if (id) expect(details[0]?.id).toBe(id);
}

describe('dev-idp user service v2', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  describe('authentication', () => {
    it('rejects calls without or with a wrong token as Unauthenticated', async () => {
      expectZitadelError(await apiClient(t.idp, null)('GET', '/v2/users/1'), 401, 16, 'AUTH-7mr9m');
      expectZitadelError(await apiClient(t.idp, 'not-the-token')('GET', '/v2/users/1'), 401, 16);
    });
  });

  describe('AddHumanUser', () => {
    it('creates a user with a password: 201, numeric id, active, email unverified, code sent', async () => {
      const email = uniqueEmail('add');
      const res = await api('POST', '/v2/users/human', {
        organization: { orgId: t.idp.orgId },
        profile: { givenName: 'Ada', familyName: 'Lovelace', preferredLanguage: 'en' },
        email: { email, sendCode: { urlTemplate: 'https://x.test/verify?code={{.Code}}' } },
        password: { password: STRONG_PASSWORD, changeRequired: false },
      });
      expect(res.status).toBe(201);
      expect(res.body.userId).toMatch(/^\d{15,20}$/);
      expect(res.body.details).toMatchObject({ sequence: '1', resourceOwner: t.idp.orgId });
      expect(res.body.emailCode).toBeUndefined();
      const userId = String(res.body.userId);
      expect(t.sentCodes.get(userId)).toMatch(/^[A-Z0-9]{6}$/);
      expect(await t.idp.lastEmailCode(userId)).toBe(t.sentCodes.get(userId));

      const got = await api('GET', `/v2/users/${userId}`);
      expect(got.status).toBe(200);
      expect(got.body.user).toMatchObject({
        userId,
        state: 'USER_STATE_ACTIVE',
        username: email,
        loginNames: [email],
        preferredLoginName: email,
        human: {
          profile: {
            givenName: 'Ada',
            familyName: 'Lovelace',
            displayName: 'Ada Lovelace',
            preferredLanguage: 'en',
          },
          email: { email, isVerified: false },
        },
      });
    });

    it('returns the code with returnCode, marks verified with isVerified, and is INITIAL without password', async () => {
      const returned = await api('POST', '/v2/users/human', {
        profile: { givenName: 'R', familyName: 'C' },
        email: { email: uniqueEmail('return'), returnCode: {} },
      });
      expect(returned.status).toBe(201);
      expect(returned.body.emailCode).toMatch(/^[A-Z0-9]{6}$/);
      expect(t.sentCodes.has(String(returned.body.userId))).toBe(false);
      const initial = await api('GET', `/v2/users/${String(returned.body.userId)}`);
      expect(initial.body.user).toMatchObject({ state: 'USER_STATE_INITIAL' });

      const verified = await createUser(t.idp, { verified: true, username: `name-${Date.now()}` });
      const got = await api('GET', `/v2/users/${verified.userId}`);
      expect(got.body.user).toMatchObject({
        username: verified.username,
        human: { email: { email: verified.email, isVerified: true } },
      });
      expect(await t.idp.lastEmailCode(verified.userId)).toBeUndefined();
    });

    it('refuses a duplicate username or email, case-insensitively, with AlreadyExists (409)', async () => {
      const existing = await createUser(t.idp, { username: `dup-${Date.now()}` });
      const sameEmail = await api('POST', '/v2/users/human', {
        profile: { givenName: 'D', familyName: 'E' },
        email: { email: existing.email.toUpperCase() },
      });
      expectZitadelError(sameEmail, 409, 6);
      const sameUsername = await api('POST', '/v2/users/human', {
        username: existing.username.toUpperCase(),
        profile: { givenName: 'D', familyName: 'E' },
        email: { email: uniqueEmail('other') },
      });
      expectZitadelError(sameUsername, 409, 6);
    });

    it('enforces the password complexity policy with InvalidArgument', async () => {
      const attempt = (password: string) =>
        api('POST', '/v2/users/human', {
          profile: { givenName: 'P', familyName: 'W' },
          email: { email: uniqueEmail('policy') },
          password: { password },
        });
      expectZitadelError(await attempt('Sh0rt!'), 400, 3, 'COMMA-HuJf6');
      expectZitadelError(await attempt('NOLOWER-123'), 400, 3, 'COMMA-co3Xw');
      expectZitadelError(await attempt('noupper-123'), 400, 3, 'COMMA-VoaRj');
      expectZitadelError(await attempt('NoNumber-abc'), 400, 3, 'COMMA-ZBv4H');
      expectZitadelError(await attempt('NoSymbol123abc'), 400, 3, 'COMMA-ZDLwA');
    });

    it('answers malformed input with a Zitadel 400, never a 500', async () => {
      expectZitadelError(await api('POST', '/v2/users/human', '{not json'), 400, 3);
      expectZitadelError(await api('POST', '/v2/users/human', {}), 400, 3);
      expectZitadelError(await api('POST', '/v2/users/human', []), 400, 3);
      expectZitadelError(
        await api('POST', '/v2/users/human', {
          profile: { givenName: 'a', familyName: 'b' },
          email: { email: 'nope' },
        }),
        400,
        3,
      );
      expectZitadelError(
        await api('POST', '/v2/users/human', {
          profile: { givenName: 'a', familyName: 'b' },
          email: { email: uniqueEmail('x'), returnCode: {}, isVerified: true },
        }),
        400,
        3,
      );
      expectZitadelError(await api('POST', '/v2/users', { queries: [{ unknownQuery: {} }] }), 400, 3);
      expectZitadelError(await api('POST', '/v2/users', { query: { limit: 'ten' } }), 400, 3);
      expectZitadelError(await api('POST', '/v2/users/1/password', { newPassword: 7 }), 400, 3);
    });

    it('refuses another organisation', async () => {
      const res = await api('POST', '/v2/users/human', {
        organization: { orgId: '1' },
        profile: { givenName: 'a', familyName: 'b' },
        email: { email: uniqueEmail('org') },
      });
      expectZitadelError(res, 404, 5);
    });
  });

  describe('GetUserByID', () => {
    it('answers NotFound for an unknown id', async () => {
      expectZitadelError(await api('GET', '/v2/users/123456789012345678'), 404, 5);
    });
  });

  describe('ListUsers', () => {
    const tag = `list${Date.now()}`;
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      for (const [key, given] of [
        ['anna', 'Anna'],
        ['bert', 'Bert'],
        ['cara', 'Cara'],
      ] as const) {
        const res = await api('POST', '/v2/users/human', {
          username: `${tag}-${key}`,
          profile: { givenName: given, familyName: tag, displayName: `${given} ${tag}` },
          email: { email: `${key}.${tag}@example.test`, isVerified: true },
          password: { password: STRONG_PASSWORD },
        });
        ids[key] = String(res.body.userId);
      }
      await api('POST', `/v2/users/${ids.cara}/deactivate`, {});
    });

    const list = async (queries: unknown[], query: Record<string, unknown> = {}) => {
      const res = await api('POST', '/v2/users', { query: { asc: true, ...query }, queries });
      expect(res.status).toBe(200);
      return res.body as {
        details: { totalResult: string };
        result: Array<{ userId: string; username: string }>;
      };
    };
    const byTag = { emailQuery: { emailAddress: `.${tag}@`, method: 'TEXT_QUERY_METHOD_CONTAINS' } };

    it('filters by email and returns totalResult as a string', async () => {
      const body = await list([byTag]);
      expect(body.details.totalResult).toBe('3');
      expect(body.result.map((u) => u.userId)).toEqual([ids.anna, ids.bert, ids.cara]);
    });

    it('supports every text method', async () => {
      const q = (userName: string, method: string) => list([{ userNameQuery: { userName, method } }]);
      expect((await q(`${tag}-anna`, 'TEXT_QUERY_METHOD_EQUALS')).result).toHaveLength(1);
      expect((await q(`${tag}-ANNA`, 'TEXT_QUERY_METHOD_EQUALS')).result).toHaveLength(0);
      expect((await q(`${tag}-ANNA`, 'TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE')).result).toHaveLength(1);
      expect((await q(`${tag}-`, 'TEXT_QUERY_METHOD_STARTS_WITH')).result).toHaveLength(3);
      expect((await q(tag.toUpperCase(), 'TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE')).result).toHaveLength(
        3,
      );
      expect((await q(`${tag}-b`, 'TEXT_QUERY_METHOD_CONTAINS')).result).toHaveLength(1);
      expect(
        (await q(`${tag}-B`.toUpperCase(), 'TEXT_QUERY_METHOD_CONTAINS_IGNORE_CASE')).result,
      ).toHaveLength(1);
      expect((await q('-cara', 'TEXT_QUERY_METHOD_ENDS_WITH')).result.map((u) => u.userId)).toContain(
        ids.cara,
      );
      expect((await q(`${tag}-CARA`, 'TEXT_QUERY_METHOD_ENDS_WITH_IGNORE_CASE')).result).toHaveLength(1);
      // LIKE wildcards in the value are literal.
      expect((await q(`${tag}_%`, 'TEXT_QUERY_METHOD_STARTS_WITH')).result).toHaveLength(0);
    });

    it('combines display name, state, id list, or, and and not', async () => {
      const display = await list([
        { displayNameQuery: { displayName: `bert ${tag}`, method: 'TEXT_QUERY_METHOD_EQUALS_IGNORE_CASE' } },
      ]);
      expect(display.result.map((u) => u.userId)).toEqual([ids.bert]);

      const inactive = await list([byTag, { stateQuery: { state: 'USER_STATE_INACTIVE' } }]);
      expect(inactive.result.map((u) => u.userId)).toEqual([ids.cara]);

      const inIds = await list([{ inUserIdsQuery: { userIds: [ids.anna, ids.cara, '1'] } }]);
      expect(inIds.result.map((u) => u.userId)).toEqual([ids.anna, ids.cara]);

      const or = await list([
        {
          orQuery: {
            queries: [
              { userNameQuery: { userName: `${tag}-anna` } },
              { userNameQuery: { userName: `${tag}-bert` } },
            ],
          },
        },
      ]);
      expect(or.result.map((u) => u.userId)).toEqual([ids.anna, ids.bert]);

      const andNot = await list([
        {
          andQuery: {
            queries: [byTag, { notQuery: { query: { stateQuery: { state: 'USER_STATE_ACTIVE' } } } }],
          },
        },
      ]);
      expect(andNot.result.map((u) => u.userId)).toEqual([ids.cara]);
    });

    it('pages with offset and limit given as strings or numbers, and sorts', async () => {
      const first = await list([byTag], { offset: '0', limit: '2' });
      expect(first.details.totalResult).toBe('3');
      expect(first.result.map((u) => u.userId)).toEqual([ids.anna, ids.bert]);
      const second = await list([byTag], { offset: 2, limit: 2 });
      expect(second.result.map((u) => u.userId)).toEqual([ids.cara]);
      const desc = await api('POST', '/v2/users', {
        query: { asc: false },
        sortingColumn: 'USER_FIELD_NAME_USER_NAME',
        queries: [byTag],
      });
      expect((desc.body.result as Array<{ userId: string }>).map((u) => u.userId)).toEqual([
        ids.cara,
        ids.bert,
        ids.anna,
      ]);
    });
  });

  describe('UpdateHumanUser', () => {
    it('changes profile and username, and a new email needs verifying again', async () => {
      const user = await createUser(t.idp, { verified: true });
      const newName = `renamed-${Date.now()}`;
      const newEmail = uniqueEmail('changed');
      const res = await api('PUT', `/v2/users/human/${user.userId}`, {
        username: newName,
        profile: { givenName: 'New', familyName: 'Name', displayName: 'Newbie' },
        email: { email: newEmail, returnCode: {} },
      });
      expect(res.status).toBe(200);
      expect(res.body.details).toMatchObject({ sequence: expect.stringMatching(/^\d+$/) });
      expect(res.body.emailCode).toMatch(/^[A-Z0-9]{6}$/);
      const got = await api('GET', `/v2/users/${user.userId}`);
      expect(got.body.user).toMatchObject({
        username: newName,
        human: {
          profile: { givenName: 'New', familyName: 'Name', displayName: 'Newbie' },
          email: { email: newEmail, isVerified: false },
        },
      });
      expect(Number((got.body.details as { sequence: string }).sequence)).toBeGreaterThan(1);
    });

    it('refuses a username taken by someone else, and answers NotFound for an unknown user', async () => {
      const a = await createUser(t.idp);
      const b = await createUser(t.idp);
      expectZitadelError(await api('PUT', `/v2/users/human/${b.userId}`, { username: a.username }), 409, 6);
      expectZitadelError(await api('PUT', '/v2/users/human/42', { username: 'x' }), 404, 5);
    });
  });

  describe('state changes', () => {
    it('deactivates and reactivates, refusing a repeat with FailedPrecondition', async () => {
      const { userId } = await createUser(t.idp);
      expect((await api('POST', `/v2/users/${userId}/deactivate`, {})).status).toBe(200);
      expect((await api('GET', `/v2/users/${userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_INACTIVE',
      });
      expectZitadelError(
        await api('POST', `/v2/users/${userId}/deactivate`, {}),
        400,
        9,
        'COMMAND-5gunjw0cd7',
      );
      expect((await api('POST', `/v2/users/${userId}/reactivate`)).status).toBe(200);
      expect((await api('GET', `/v2/users/${userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
      expectZitadelError(
        await api('POST', `/v2/users/${userId}/reactivate`, {}),
        400,
        9,
        'COMMAND-s5qqcz97hf',
      );
    });

    it('locks and unlocks, refusing a repeat with FailedPrecondition', async () => {
      const { userId } = await createUser(t.idp);
      expect((await api('POST', `/v2/users/${userId}/lock`, {})).status).toBe(200);
      expect((await api('GET', `/v2/users/${userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_LOCKED',
      });
      expectZitadelError(await api('POST', `/v2/users/${userId}/lock`, {}), 400, 9, 'COMMAND-3NN8v');
      expect((await api('POST', `/v2/users/${userId}/unlock`, {})).status).toBe(200);
      expect((await api('GET', `/v2/users/${userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
      expectZitadelError(await api('POST', `/v2/users/${userId}/unlock`, {}), 400, 9, 'COMMAND-olb9vb0oca');
    });

    it('answers NotFound for state changes of unknown users', async () => {
      expectZitadelError(await api('POST', '/v2/users/77/deactivate', {}), 404, 5);
    });
  });

  describe('DeleteUser', () => {
    it('removes the user: NotFound afterwards', async () => {
      const { userId } = await createUser(t.idp);
      const res = await api('DELETE', `/v2/users/${userId}`);
      expect(res.status).toBe(200);
      expect(res.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
      expectZitadelError(await api('GET', `/v2/users/${userId}`), 404, 5);
      expectZitadelError(await api('DELETE', `/v2/users/${userId}`), 404, 5);
    });
  });

  describe('SetPassword', () => {
    it('sets a new password (checking the current one when given) that sessions then accept', async () => {
      const user = await createUser(t.idp);
      const next = 'Another-Secret-7';
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/password`, {
          newPassword: { password: next },
          currentPassword: 'wrong',
        }),
        400,
        3,
        'COMMAND-3M0fs',
      );
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/password`, { newPassword: { password: 'weak' } }),
        400,
        3,
        'COMMA-HuJf6',
      );
      const ok = await api('POST', `/v2/users/${user.userId}/password`, {
        newPassword: { password: next, changeRequired: false },
        currentPassword: user.password,
      });
      expect(ok.status).toBe(200);
      const session = (password: string) =>
        api('POST', '/v2/sessions', { checks: { user: { userId: user.userId }, password: { password } } });
      expect((await session(next)).status).toBe(201);
      expect((await session(user.password)).status).toBe(400);
    });

    it('completes an initial user', async () => {
      const user = await createUser(t.idp, { password: null });
      expect((await api('GET', `/v2/users/${user.userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_INITIAL',
      });
      await api('POST', `/v2/users/${user.userId}/password`, { newPassword: { password: STRONG_PASSWORD } });
      expect((await api('GET', `/v2/users/${user.userId}`)).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
    });
  });

  describe('PasswordReset and SetPassword with a verification code', () => {
    const sessionWith = (userId: string, password: string) =>
      api('POST', '/v2/sessions', { checks: { user: { userId }, password: { password } } });

    it('mails a code (sendLink) that sets the password once', async () => {
      const user = await createUser(t.idp, { verified: true });
      const sent = new Map<string, string>();
      const res = await api('POST', `/v2/users/${user.userId}/password_reset`, {
        sendLink: { notificationType: 'NOTIFICATION_TYPE_Email' },
      });
      expect(res.status).toBe(200);
      expect(res.body.verificationCode).toBeUndefined();
      expect(res.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
      const code = await t.idp.lastPasswordCode(user.userId);
      expect(code).toMatch(/^[A-Z0-9]{6}$/);
      expect(t.logs.some((line) => line.includes(`password reset code for ${user.email}`))).toBe(true);
      sent.set(user.userId, code!);

      const next = 'Reset-Secret-42';
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/password`, {
          newPassword: { password: next },
          verificationCode: 'WRONG1',
        }),
        400,
        3,
        'CODE-woT0xc',
      );
      const ok = await api('POST', `/v2/users/${user.userId}/password`, {
        newPassword: { password: next, changeRequired: false },
        verificationCode: code,
      });
      expect(ok.status).toBe(200);
      expect((await sessionWith(user.userId, next)).status).toBe(201);
      expect((await sessionWith(user.userId, user.password)).status).toBe(400);
      // Used up.
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/password`, {
          newPassword: { password: 'Third-Secret-42' },
          verificationCode: code,
        }),
        400,
        3,
        'CODE-woT0xc',
      );
      expect(await t.idp.lastPasswordCode(user.userId)).toBeUndefined();
    });

    it('returns the code with returnCode, and kills it after 5 wrong guesses', async () => {
      const user = await createUser(t.idp, { verified: true });
      const res = await api('POST', `/v2/users/${user.userId}/password_reset`, { returnCode: {} });
      expect(res.status).toBe(200);
      const code = String(res.body.verificationCode);
      expect(await t.idp.lastPasswordCode(user.userId)).toBe(code);
      for (let i = 0; i < 5; i++) {
        const wrong = await api('POST', `/v2/users/${user.userId}/password`, {
          newPassword: { password: 'Reset-Secret-42' },
          verificationCode: `X${i}`,
        });
        expect(wrong.status).toBe(400);
      }
      expect(await t.idp.lastPasswordCode(user.userId)).toBeUndefined();
      const late = await api('POST', `/v2/users/${user.userId}/password`, {
        newPassword: { password: 'Reset-Secret-42' },
        verificationCode: code,
      });
      expect(late.status).toBe(400);
    });

    it('refuses an expired code, and one for an unknown user', async () => {
      const user = await createUser(t.idp, { verified: true });
      const res = await api('POST', `/v2/users/${user.userId}/password_reset`, { returnCode: {} });
      await t.idp.expireCodes(user.userId);
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/password`, {
          newPassword: { password: 'Reset-Secret-42' },
          verificationCode: res.body.verificationCode,
        }),
        400,
        3,
        'CODE-woT0xc',
      );
      expectZitadelError(
        await api('POST', '/v2/users/1234567/password_reset', { sendLink: {} }),
        404,
        5,
        'QUERY-Dfbg2',
      );
    });
  });

  describe('GetPasswordComplexitySettings', () => {
    it('reports the policy in force, which SetPassword applies', async () => {
      const res = await api('GET', `/v2/settings/password/complexity?ctx.orgId=${t.idp.orgId}`);
      expect(res.status).toBe(200);
      expect(res.body.settings).toEqual({
        minLength: '8',
        requiresUppercase: true,
        requiresLowercase: true,
        requiresNumber: true,
        requiresSymbol: true,
        resourceOwnerType: 'RESOURCE_OWNER_TYPE_INSTANCE',
      });
      const user = await createUser(t.idp, { verified: true });
      t.idp.setPasswordComplexity({ minLength: 20 });
      try {
        expect((await api('GET', '/v2/settings/password/complexity')).body.settings).toMatchObject({
          minLength: '20',
        });
        expectZitadelError(
          await api('POST', `/v2/users/${user.userId}/password`, {
            newPassword: { password: 'Short-Secret-1' },
          }),
          400,
          3,
          'COMMA-HuJf6',
        );
      } finally {
        t.idp.setPasswordComplexity({ minLength: 8 });
      }
    });
  });

  describe('VerifyEmail', () => {
    it('rejects a wrong code with InvalidArgument and accepts the sent one once', async () => {
      const user = await createUser(t.idp);
      const code = t.sentCodes.get(user.userId);
      expect(code).toBeDefined();
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/email/verify`, { verificationCode: 'WRONG1' }),
        400,
        3,
      );
      const ok = await api('POST', `/v2/users/${user.userId}/email/verify`, { verificationCode: code });
      expect(ok.status).toBe(200);
      expect((await api('GET', `/v2/users/${user.userId}`)).body.user).toMatchObject({
        human: { email: { isVerified: true } },
      });
      expect(await t.idp.lastEmailCode(user.userId)).toBeUndefined();
      expectZitadelError(
        await api('POST', `/v2/users/${user.userId}/email/verify`, { verificationCode: code }),
        400,
        3,
      );
    });

    it('resends a fresh code', async () => {
      const user = await createUser(t.idp);
      const first = t.sentCodes.get(user.userId);
      const res = await api('POST', `/v2/users/${user.userId}/email/resend`, { returnCode: {} });
      expect(res.status).toBe(200);
      expect(res.body.verificationCode).toMatch(/^[A-Z0-9]{6}$/);
      expect(await t.idp.lastEmailCode(user.userId)).toBe(res.body.verificationCode);
      expect(first).toBeDefined();
    });
  });
});
