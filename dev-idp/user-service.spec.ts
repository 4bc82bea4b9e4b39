import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Code } from '@connectrpc/connect';
import {
  STRONG_PASSWORD,
  type TestProvider,
  apiClient,
  createUser,
  expectZitadelError,
  rawConnect,
  startTestProvider,
  uniqueEmail,
} from './test-support.js';

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
      expectZitadelError(
        await apiClient(t.idp, null)('getUserByID', { userId: '1' }),
        Code.Unauthenticated,
        'AUTH-7mr9m',
      );
      expectZitadelError(
        await apiClient(t.idp, 'not-the-token')('getUserByID', { userId: '1' }),
        Code.Unauthenticated,
      );
    });
  });

  describe('AddHumanUser', () => {
    it('creates a user with a password: numeric id, active, email unverified, code sent', async () => {
      const email = uniqueEmail('add');
      const res = await api('addHumanUser', {
        organization: { orgId: t.idp.orgId },
        profile: { givenName: 'Ada', familyName: 'Lovelace', preferredLanguage: 'en' },
        email: { email, sendCode: { urlTemplate: 'https://x.test/verify?code={{.Code}}' } },
        password: { password: STRONG_PASSWORD, changeRequired: false },
      });
      expect(res.code).toBe(0);
      expect(res.body.userId).toMatch(/^\d{15,20}$/);
      expect(res.body.details).toMatchObject({ sequence: '1', resourceOwner: t.idp.orgId });
      expect(res.body.emailCode).toBeUndefined();
      const userId = String(res.body.userId);
      expect(t.sentCodes.get(userId)).toMatch(/^[A-Z0-9]{6}$/);
      expect(await t.idp.lastEmailCode(userId)).toBe(t.sentCodes.get(userId));

      const got = await api('getUserByID', { userId: userId });
      expect(got.code).toBe(0);
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
      const returned = await api('addHumanUser', {
        profile: { givenName: 'R', familyName: 'C' },
        email: { email: uniqueEmail('return'), returnCode: {} },
      });
      expect(returned.code).toBe(0);
      expect(returned.body.emailCode).toMatch(/^[A-Z0-9]{6}$/);
      expect(t.sentCodes.has(String(returned.body.userId))).toBe(false);
      const initial = await api('getUserByID', { userId: String(returned.body.userId) });
      expect(initial.body.user).toMatchObject({ state: 'USER_STATE_INITIAL' });

      const verified = await createUser(t.idp, { verified: true, username: `name-${Date.now()}` });
      const got = await api('getUserByID', { userId: verified.userId });
      expect(got.body.user).toMatchObject({
        username: verified.username,
        human: { email: { email: verified.email, isVerified: true } },
      });
      expect(await t.idp.lastEmailCode(verified.userId)).toBeUndefined();
    });

    it('refuses a duplicate username or email, case-insensitively, with AlreadyExists', async () => {
      const existing = await createUser(t.idp, { username: `dup-${Date.now()}` });
      const sameEmail = await api('addHumanUser', {
        profile: { givenName: 'D', familyName: 'E' },
        email: { email: existing.email.toUpperCase() },
      });
      expectZitadelError(sameEmail, Code.AlreadyExists);
      const sameUsername = await api('addHumanUser', {
        username: existing.username.toUpperCase(),
        profile: { givenName: 'D', familyName: 'E' },
        email: { email: uniqueEmail('other') },
      });
      expectZitadelError(sameUsername, Code.AlreadyExists);
    });

    it('enforces the password complexity policy with InvalidArgument', async () => {
      const attempt = (password: string) =>
        api('addHumanUser', {
          profile: { givenName: 'P', familyName: 'W' },
          email: { email: uniqueEmail('policy') },
          password: { password },
        });
      expectZitadelError(await attempt('Sh0rt!'), Code.InvalidArgument, 'COMMA-HuJf6');
      expectZitadelError(await attempt('NOLOWER-123'), Code.InvalidArgument, 'COMMA-co3Xw');
      expectZitadelError(await attempt('noupper-123'), Code.InvalidArgument, 'COMMA-VoaRj');
      expectZitadelError(await attempt('NoNumber-abc'), Code.InvalidArgument, 'COMMA-ZBv4H');
      expectZitadelError(await attempt('NoSymbol123abc'), Code.InvalidArgument, 'COMMA-ZDLwA');
    });

    it('answers malformed input with InvalidArgument (HTTP 400), never a 500', async () => {
      const malformed = async (method: string, body: string) =>
        expect(await rawConnect(t.idp, `zitadel.user.v2.UserService/${method}`, body)).toEqual({
          status: 400,
          code: 'invalid_argument',
        });
      await malformed('AddHumanUser', '{not json');
      await malformed('AddHumanUser', '[]');
      await malformed('ListUsers', '{"queries": [{"unknownQuery": {}}]}');
      await malformed('ListUsers', '{"query": {"limit": "ten"}}');
      await malformed('SetPassword', '{"userId": "1", "newPassword": 7}');
      // Two members of one oneof (verification).
      const email = uniqueEmail('x');
      await malformed(
        'AddHumanUser',
        `{"profile": {"givenName": "a", "familyName": "b"}, "email": {"email": "${email}", "returnCode": {}, "isVerified": true}}`,
      );
      expectZitadelError(await api('addHumanUser', {}), Code.InvalidArgument);
      expectZitadelError(
        await api('addHumanUser', {
          profile: { givenName: 'a', familyName: 'b' },
          email: { email: 'nope' },
        }),
        Code.InvalidArgument,
      );
    });

    it('refuses another organisation', async () => {
      const res = await api('addHumanUser', {
        organization: { orgId: '1' },
        profile: { givenName: 'a', familyName: 'b' },
        email: { email: uniqueEmail('org') },
      });
      expectZitadelError(res, Code.NotFound);
    });
  });

  describe('GetUserByID', () => {
    it('answers NotFound for an unknown id', async () => {
      expectZitadelError(await api('getUserByID', { userId: '123456789012345678' }), Code.NotFound);
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
        const res = await api('addHumanUser', {
          username: `${tag}-${key}`,
          profile: { givenName: given, familyName: tag, displayName: `${given} ${tag}` },
          email: { email: `${key}.${tag}@example.test`, isVerified: true },
          password: { password: STRONG_PASSWORD },
        });
        ids[key] = String(res.body.userId);
      }
      await api('deactivateUser', { userId: ids.cara });
    });

    const list = async (queries: unknown[], query: Record<string, unknown> = {}) => {
      const res = await api('listUsers', { query: { asc: true, ...query }, queries });
      expect(res.code).toBe(0);
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
      const desc = await api('listUsers', {
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
      const res = await api('updateHumanUser', {
        userId: user.userId,
        username: newName,
        profile: { givenName: 'New', familyName: 'Name', displayName: 'Newbie' },
        email: { email: newEmail, returnCode: {} },
      });
      expect(res.code).toBe(0);
      expect(res.body.details).toMatchObject({ sequence: expect.stringMatching(/^\d+$/) });
      expect(res.body.emailCode).toMatch(/^[A-Z0-9]{6}$/);
      const got = await api('getUserByID', { userId: user.userId });
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
      expectZitadelError(
        await api('updateHumanUser', { userId: b.userId, username: a.username }),
        Code.AlreadyExists,
      );
      expectZitadelError(await api('updateHumanUser', { userId: '42', username: 'x' }), Code.NotFound);
    });
  });

  describe('state changes', () => {
    it('deactivates and reactivates, refusing a repeat with FailedPrecondition', async () => {
      const { userId } = await createUser(t.idp);
      expect((await api('deactivateUser', { userId: userId })).code).toBe(0);
      expect((await api('getUserByID', { userId: userId })).body.user).toMatchObject({
        state: 'USER_STATE_INACTIVE',
      });
      expectZitadelError(
        await api('deactivateUser', { userId: userId }),
        Code.FailedPrecondition,
        'COMMAND-5gunjw0cd7',
      );
      expect((await api('reactivateUser', { userId: userId })).code).toBe(0);
      expect((await api('getUserByID', { userId: userId })).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
      expectZitadelError(
        await api('reactivateUser', { userId: userId }),
        Code.FailedPrecondition,
        'COMMAND-s5qqcz97hf',
      );
    });

    it('locks and unlocks, refusing a repeat with FailedPrecondition', async () => {
      const { userId } = await createUser(t.idp);
      expect((await api('lockUser', { userId: userId })).code).toBe(0);
      expect((await api('getUserByID', { userId: userId })).body.user).toMatchObject({
        state: 'USER_STATE_LOCKED',
      });
      expectZitadelError(await api('lockUser', { userId: userId }), Code.FailedPrecondition, 'COMMAND-3NN8v');
      expect((await api('unlockUser', { userId: userId })).code).toBe(0);
      expect((await api('getUserByID', { userId: userId })).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
      expectZitadelError(
        await api('unlockUser', { userId: userId }),
        Code.FailedPrecondition,
        'COMMAND-olb9vb0oca',
      );
    });

    it('answers NotFound for state changes of unknown users', async () => {
      expectZitadelError(await api('deactivateUser', { userId: '77' }), Code.NotFound);
    });
  });

  describe('DeleteUser', () => {
    it('removes the user: NotFound afterwards', async () => {
      const { userId } = await createUser(t.idp);
      const res = await api('deleteUser', { userId: userId });
      expect(res.code).toBe(0);
      expect(res.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
      expectZitadelError(await api('getUserByID', { userId: userId }), Code.NotFound);
      expectZitadelError(await api('deleteUser', { userId: userId }), Code.NotFound);
    });
  });

  describe('SetPassword', () => {
    it('sets a new password (checking the current one when given) that sessions then accept', async () => {
      const user = await createUser(t.idp);
      const next = 'Another-Secret-7';
      expectZitadelError(
        await api('setPassword', {
          userId: user.userId,
          newPassword: { password: next },
          currentPassword: 'wrong',
        }),
        Code.InvalidArgument,
        'COMMAND-3M0fs',
      );
      expectZitadelError(
        await api('setPassword', { userId: user.userId, newPassword: { password: 'weak' } }),
        Code.InvalidArgument,
        'COMMA-HuJf6',
      );
      const ok = await api('setPassword', {
        userId: user.userId,
        newPassword: { password: next, changeRequired: false },
        currentPassword: user.password,
      });
      expect(ok.code).toBe(0);
      const session = (password: string) =>
        api('createSession', { checks: { user: { userId: user.userId }, password: { password } } });
      expect((await session(next)).code).toBe(0);
      expect((await session(user.password)).code).toBe(Code.InvalidArgument);
    });

    it('completes an initial user', async () => {
      const user = await createUser(t.idp, { password: null });
      expect((await api('getUserByID', { userId: user.userId })).body.user).toMatchObject({
        state: 'USER_STATE_INITIAL',
      });
      await api('setPassword', { userId: user.userId, newPassword: { password: STRONG_PASSWORD } });
      expect((await api('getUserByID', { userId: user.userId })).body.user).toMatchObject({
        state: 'USER_STATE_ACTIVE',
      });
    });
  });

  describe('PasswordReset and SetPassword with a verification code', () => {
    const sessionWith = (userId: string, password: string) =>
      api('createSession', { checks: { user: { userId }, password: { password } } });

    it('mails a code (sendLink) that sets the password once', async () => {
      const user = await createUser(t.idp, { verified: true });
      const sent = new Map<string, string>();
      const res = await api('passwordReset', {
        userId: user.userId,
        sendLink: { notificationType: 'NOTIFICATION_TYPE_Email' },
      });
      expect(res.code).toBe(0);
      expect(res.body.verificationCode).toBeUndefined();
      expect(res.body.details).toMatchObject({ resourceOwner: t.idp.orgId });
      const code = await t.idp.lastPasswordCode(user.userId);
      expect(code).toMatch(/^[A-Z0-9]{6}$/);
      expect(t.logs.some((line) => line.includes(`password reset code for ${user.email}`))).toBe(true);
      sent.set(user.userId, code!);

      const next = 'Reset-Secret-42';
      expectZitadelError(
        await api('setPassword', {
          userId: user.userId,
          newPassword: { password: next },
          verificationCode: 'WRONG1',
        }),
        Code.InvalidArgument,
        'CODE-woT0xc',
      );
      const ok = await api('setPassword', {
        userId: user.userId,
        newPassword: { password: next, changeRequired: false },
        verificationCode: code,
      });
      expect(ok.code).toBe(0);
      expect((await sessionWith(user.userId, next)).code).toBe(0);
      expect((await sessionWith(user.userId, user.password)).code).toBe(Code.InvalidArgument);
      // Used up.
      expectZitadelError(
        await api('setPassword', {
          userId: user.userId,
          newPassword: { password: 'Third-Secret-42' },
          verificationCode: code,
        }),
        Code.InvalidArgument,
        'CODE-woT0xc',
      );
      expect(await t.idp.lastPasswordCode(user.userId)).toBeUndefined();
    });

    it('returns the code with returnCode, and kills it after 5 wrong guesses', async () => {
      const user = await createUser(t.idp, { verified: true });
      const res = await api('passwordReset', { userId: user.userId, returnCode: {} });
      expect(res.code).toBe(0);
      const code = String(res.body.verificationCode);
      expect(await t.idp.lastPasswordCode(user.userId)).toBe(code);
      for (let i = 0; i < 5; i++) {
        const wrong = await api('setPassword', {
          userId: user.userId,
          newPassword: { password: 'Reset-Secret-42' },
          verificationCode: `X${i}`,
        });
        expect(wrong.code).toBe(Code.InvalidArgument);
      }
      expect(await t.idp.lastPasswordCode(user.userId)).toBeUndefined();
      const late = await api('setPassword', {
        userId: user.userId,
        newPassword: { password: 'Reset-Secret-42' },
        verificationCode: code,
      });
      expect(late.code).toBe(Code.InvalidArgument);
    });

    it('refuses an expired code, and one for an unknown user', async () => {
      const user = await createUser(t.idp, { verified: true });
      const res = await api('passwordReset', { userId: user.userId, returnCode: {} });
      await t.idp.expireCodes(user.userId);
      expectZitadelError(
        await api('setPassword', {
          userId: user.userId,
          newPassword: { password: 'Reset-Secret-42' },
          verificationCode: res.body.verificationCode,
        }),
        Code.InvalidArgument,
        'CODE-woT0xc',
      );
      expectZitadelError(
        await api('passwordReset', { userId: '1234567', sendLink: {} }),
        Code.NotFound,
        'QUERY-Dfbg2',
      );
    });
  });

  describe('GetPasswordComplexitySettings', () => {
    it('reports the policy in force, which SetPassword applies', async () => {
      const res = await api('getPasswordComplexitySettings', { ctx: { orgId: t.idp.orgId } });
      expect(res.code).toBe(0);
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
        expect((await api('getPasswordComplexitySettings')).body.settings).toMatchObject({
          minLength: '20',
        });
        expectZitadelError(
          await api('setPassword', { userId: user.userId, newPassword: { password: 'Short-Secret-1' } }),
          Code.InvalidArgument,
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
        await api('verifyEmail', { userId: user.userId, verificationCode: 'WRONG1' }),
        Code.InvalidArgument,
      );
      const ok = await api('verifyEmail', { userId: user.userId, verificationCode: code });
      expect(ok.code).toBe(0);
      expect((await api('getUserByID', { userId: user.userId })).body.user).toMatchObject({
        human: { email: { isVerified: true } },
      });
      expect(await t.idp.lastEmailCode(user.userId)).toBeUndefined();
      expectZitadelError(
        await api('verifyEmail', { userId: user.userId, verificationCode: code }),
        Code.InvalidArgument,
      );
    });

    it('resends a fresh code', async () => {
      const user = await createUser(t.idp);
      const first = t.sentCodes.get(user.userId);
      const res = await api('resendEmailCode', { userId: user.userId, returnCode: {} });
      expect(res.code).toBe(0);
      expect(res.body.verificationCode).toMatch(/^[A-Z0-9]{6}$/);
      expect(await t.idp.lastEmailCode(user.userId)).toBe(res.body.verificationCode);
      expect(first).toBeDefined();
    });
  });
});
