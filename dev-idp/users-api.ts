import { randomInt } from 'node:crypto';
import { verify } from '@node-rs/argon2';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { IdpContext } from './context.js';
import { checkPasswordPolicy, hashPassword } from './credentials.js';
import { failedPrecondition, invalidArgument, notFound, parseInput } from './errors.js';
import { presentUser, userDetails } from './presenters.js';
import type { Queryable, UserFields, UserRow, UserState } from './store.js';
import { buildUserSearch, listUsersRequest } from './user-query.js';

/** Zitadel's default email code: six characters, upper-case letters and digits, valid for an hour. */
const EMAIL_CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const EMAIL_CODE_LIFETIME_SECONDS = 3600;
/** Wrong guesses after which a pending email code is deleted: a new one must be sent. */
export const EMAIL_CODE_MAX_ATTEMPTS = 5;

function newEmailCode(): string {
  return Array.from({ length: 6 }, () => EMAIL_CODE_ALPHABET[randomInt(EMAIL_CODE_ALPHABET.length)]).join('');
}

// --- request schemas (zitadel.user.v2) ---

const userIdParam = z.object({ userId: z.string().min(1).max(200) });
const name = z.string().trim().min(1).max(200);
const emailAddress = z
  .string()
  .trim()
  .max(200)
  .regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address');

const verification = {
  sendCode: z.object({ urlTemplate: z.string().max(200).optional() }).optional(),
  returnCode: z.object({}).optional(),
  isVerified: z.boolean().optional(),
};
const oneVerification = (e: { sendCode?: unknown; returnCode?: unknown; isVerified?: unknown }) =>
  [e.sendCode, e.returnCode, e.isVerified].filter((v) => v !== undefined).length <= 1;
const ONE_VERIFICATION = { message: 'set at most one of sendCode, returnCode, isVerified' };

const emailInput = z
  .object({ email: emailAddress, ...verification })
  .refine(oneVerification, ONE_VERIFICATION);
type EmailInput = z.output<typeof emailInput>;

const passwordInput = z.object({
  password: z.string().min(1).max(200),
  changeRequired: z.boolean().optional(),
});

const addHumanUserRequest = z.object({
  userId: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]{1,200}$/, 'must be 1-200 letters, digits or _.@-')
    .optional(),
  username: name.optional(),
  organization: z
    .object({ orgId: z.string().max(200).optional(), orgDomain: z.string().max(200).optional() })
    .optional(),
  profile: z.object({
    givenName: name,
    familyName: name,
    nickName: z.string().max(200).optional(),
    displayName: z.string().max(200).optional(),
    preferredLanguage: z.string().max(10).optional(),
  }),
  email: emailInput,
  password: passwordInput.optional(),
  hashedPassword: z.unknown().optional(),
});

const updateHumanUserRequest = z.object({
  username: name.optional(),
  profile: z
    .object({
      givenName: name.optional(),
      familyName: name.optional(),
      nickName: z.string().max(200).optional(),
      displayName: z.string().max(200).optional(),
      preferredLanguage: z.string().max(10).optional(),
    })
    .optional(),
  email: emailInput.optional(),
  password: z
    .object({
      password: passwordInput,
      currentPassword: z.string().max(200).optional(),
      verificationCode: z.string().max(200).optional(),
    })
    .optional(),
});

const setPasswordRequest = z.object({
  newPassword: passwordInput,
  currentPassword: z.string().max(200).optional(),
  verificationCode: z.string().max(200).optional(),
});

const verifyEmailRequest = z.object({ verificationCode: z.string().min(1).max(200) });
const resendEmailCodeRequest = z.object(verification).refine(oneVerification, ONE_VERIFICATION);

// --- helpers ---

export function userNotFound(): Error {
  return notFound('QUERY-Dfbg2', 'User could not be found');
}

async function lockUser(db: Queryable, ctx: IdpContext, userId: string): Promise<UserRow> {
  const user = await ctx.store.getUser(db, userId, true);
  if (!user) throw userNotFound();
  return user;
}

/** Produces a verification code: returned to the caller when asked, otherwise "sent" (to the sink). */
async function issueEmailCode(
  db: Queryable,
  ctx: IdpContext,
  user: UserRow,
  returnCode: boolean,
): Promise<{ code: string; deliver: () => void }> {
  const code = newEmailCode();
  await ctx.store.putEmailCode(db, user.id, code, EMAIL_CODE_LIFETIME_SECONDS);
  const deliver = () => {
    if (returnCode) return;
    try {
      if (ctx.emailCodeSink) ctx.emailCodeSink(user.id, user.email, code);
      else ctx.logger.log(`dev-idp: email verification code for ${user.email} (${user.id}): ${code}`);
    } catch (error) {
      ctx.logger.warn(
        `dev-idp: emailCodeSink threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };
  return { code, deliver };
}

/** Applies a new email (or re-verification); a code is produced unless the caller declares it verified. */
async function changeEmail(
  db: Queryable,
  ctx: IdpContext,
  user: UserRow,
  email: EmailInput,
): Promise<{ user: UserRow; code?: string; deliver?: () => void }> {
  const verified = email.isVerified === true;
  const updated = await ctx.store.updateUser(db, user.id, { email: email.email, email_verified: verified });
  if (!updated) throw userNotFound();
  if (verified) {
    await ctx.store.deleteEmailCode(db, user.id);
    return { user: updated };
  }
  const { code, deliver } = await issueEmailCode(db, ctx, updated, email.returnCode !== undefined);
  return { user: updated, code, deliver };
}

async function newPasswordFields(
  password: z.output<typeof passwordInput>,
  state: UserState,
): Promise<Partial<UserFields>> {
  checkPasswordPolicy(password.password);
  return {
    password_hash: await hashPassword(password.password),
    password_change_required: password.changeRequired ?? false,
    failed_password_attempts: 0,
    // Setting the first password completes an initial user, as in Zitadel.
    state: state === 'USER_STATE_INITIAL' ? 'USER_STATE_ACTIVE' : state,
  };
}

async function checkCurrentPassword(user: UserRow, current: string | undefined, code: string | undefined) {
  if (code !== undefined) {
    throw invalidArgument('DEVIDP-RESET', 'Password reset codes are not supported by the development IdP');
  }
  if (current === undefined) return;
  const ok = user.password_hash ? await verify(user.password_hash, current).catch(() => false) : false;
  if (!ok) throw invalidArgument('COMMAND-3M0fs', 'Password is invalid');
}

type Transition = {
  path: string;
  /** The Actions v2 event type Zitadel emits for it. */
  event: string;
  /** Throws Zitadel's FailedPrecondition when the user is not in a state the action applies to. */
  check: (user: UserRow) => void;
  next: (user: UserRow) => Partial<UserFields>;
};

const activeOrInitial = (user: UserRow): UserState =>
  user.password_hash ? 'USER_STATE_ACTIVE' : 'USER_STATE_INITIAL';

const TRANSITIONS: Transition[] = [
  {
    path: 'deactivate',
    event: 'user.deactivated',
    check: (user) => {
      if (user.state === 'USER_STATE_INITIAL') {
        throw failedPrecondition('COMMAND-gvx4kct9r2', 'User in initial state cannot be deactivated');
      }
      if (user.state === 'USER_STATE_INACTIVE')
        throw failedPrecondition('COMMAND-5gunjw0cd7', 'User is already inactive');
    },
    next: () => ({ state: 'USER_STATE_INACTIVE' }),
  },
  {
    path: 'reactivate',
    event: 'user.reactivated',
    check: (user) => {
      if (user.state !== 'USER_STATE_INACTIVE')
        throw failedPrecondition('COMMAND-s5qqcz97hf', 'User is not inactive');
    },
    next: (user) => ({ state: activeOrInitial(user) }),
  },
  {
    path: 'lock',
    event: 'user.locked',
    check: (user) => {
      if (user.state !== 'USER_STATE_ACTIVE' && user.state !== 'USER_STATE_INITIAL') {
        throw failedPrecondition('COMMAND-3NN8v', 'User must be active or initial to be locked');
      }
    },
    next: () => ({ state: 'USER_STATE_LOCKED' }),
  },
  {
    path: 'unlock',
    event: 'user.unlocked',
    check: (user) => {
      if (user.state !== 'USER_STATE_LOCKED')
        throw failedPrecondition('COMMAND-olb9vb0oca', 'User is not locked');
    },
    next: (user) => ({ state: activeOrInitial(user), failed_password_attempts: 0 }),
  },
];

/** zitadel.user.v2.UserService over its REST mapping (`/v2/users…`). */
export function registerUserRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store } = ctx;

  app.post('/v2/users/human', async (request, reply) => {
    const body = parseInput(addHumanUserRequest, request.body, 'AddHumanUserRequest');
    const org = body.organization;
    // Any existing organization by id; by domain, only the configured one (other orgs have no domain here).
    const orgId = org?.orgId ?? ctx.orgId;
    if (
      (org?.orgDomain && (org.orgDomain !== ctx.orgDomain || orgId !== ctx.orgId)) ||
      !(await store.getOrganization(store.pool, orgId))
    ) {
      throw notFound('QUERY-iTTGJ', 'Organisation not found');
    }
    if (body.hashedPassword !== undefined) {
      throw invalidArgument('DEVIDP-HASH', 'hashedPassword is not supported by the development IdP');
    }
    if (body.password) checkPasswordPolicy(body.password.password);
    const passwordHash = body.password ? await hashPassword(body.password.password) : null;
    const { profile, email } = body;
    const result = await store.transaction(async (db) => {
      const user = await store.insertUser(
        db,
        orgId,
        {
          username: body.username ?? email.email,
          email: email.email,
          email_verified: email.isVerified === true,
          given_name: profile.givenName,
          family_name: profile.familyName,
          nick_name: profile.nickName ?? '',
          display_name: profile.displayName?.trim() || `${profile.givenName} ${profile.familyName}`,
          preferred_language: profile.preferredLanguage ?? '',
          state: passwordHash ? 'USER_STATE_ACTIVE' : 'USER_STATE_INITIAL',
          password_hash: passwordHash,
          password_change_required: body.password?.changeRequired ?? false,
          failed_password_attempts: 0,
        },
        body.userId,
      );
      if (email.isVerified === true) return { user, code: undefined, deliver: undefined };
      return { user, ...(await issueEmailCode(db, ctx, user, email.returnCode !== undefined)) };
    });
    result.deliver?.();
    ctx.events.userEvent('user.human.added', result.user, {
      userName: result.user.username,
      email: result.user.email,
    });
    return reply.code(201).send({
      userId: result.user.id,
      details: userDetails(result.user),
      ...(email.returnCode !== undefined && result.code ? { emailCode: result.code } : {}),
    });
  });

  app.post('/v2/users', async (request) => {
    const body = parseInput(listUsersRequest, request.body, 'ListUsersRequest');
    const search = buildUserSearch(body);
    const [{ rows }, count] = await Promise.all([
      store.pool.query<UserRow>(search.sql, search.values),
      store.pool.query<{ total: string }>(search.countSql, search.countValues),
    ]);
    return {
      details: {
        totalResult: count.rows[0]?.total ?? '0',
        processedSequence: '0',
        timestamp: new Date().toISOString(),
      },
      sortingColumn: body.sortingColumn,
      result: rows.map(presentUser),
    };
  });

  app.get('/v2/users/:userId', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'GetUserByIDRequest');
    const user = await store.getUser(store.pool, userId);
    if (!user) throw userNotFound();
    return { details: userDetails(user), user: presentUser(user) };
  });

  app.put('/v2/users/human/:userId', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'UpdateHumanUserRequest');
    const body = parseInput(updateHumanUserRequest, request.body, 'UpdateHumanUserRequest');
    const result = await store.transaction(async (db) => {
      let user = await lockUser(db, ctx, userId);
      const patch: Partial<UserFields> = {};
      if (body.username !== undefined) patch.username = body.username;
      if (body.profile) {
        const p = body.profile;
        Object.assign(patch, {
          given_name: p.givenName,
          family_name: p.familyName,
          nick_name: p.nickName,
          display_name: p.displayName?.trim() || undefined,
          preferred_language: p.preferredLanguage,
        });
      }
      if (body.password) {
        await checkCurrentPassword(user, body.password.currentPassword, body.password.verificationCode);
        Object.assign(patch, await newPasswordFields(body.password.password, user.state));
      }
      user = (await store.updateUser(db, userId, patch)) ?? user;
      const emailChanged =
        body.email && (body.email.email !== user.email || body.email.isVerified !== undefined);
      if (body.email && emailChanged)
        return { ...(await changeEmail(db, ctx, user, body.email)), emailChanged: true };
      return { user, code: undefined, deliver: undefined, emailChanged: false };
    });
    result.deliver?.();
    // One event per update (each of Zitadel's would carry its own sequence); the receiver re-reads anyway.
    const event = result.emailChanged
      ? 'user.human.email.changed'
      : body.username !== undefined
        ? 'user.username.changed'
        : body.password && !body.profile
          ? 'user.human.password.changed'
          : 'user.human.profile.changed';
    ctx.events.userEvent(event, result.user);
    return {
      details: userDetails(result.user),
      ...(body.email?.returnCode !== undefined && result.code ? { emailCode: result.code } : {}),
    };
  });

  for (const transition of TRANSITIONS) {
    app.post(`/v2/users/:userId/${transition.path}`, async (request) => {
      const { userId } = parseInput(userIdParam, request.params, 'request');
      const user = await store.transaction(async (db) => {
        const current = await lockUser(db, ctx, userId);
        transition.check(current);
        return store.updateUser(db, userId, transition.next(current));
      });
      if (!user) throw userNotFound();
      ctx.events.userEvent(transition.event, user);
      return { details: userDetails(user) };
    });
  }

  app.delete('/v2/users/:userId', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'DeleteUserRequest');
    const user = await store.deleteUser(store.pool, userId);
    if (!user) throw userNotFound();
    const removed = { ...user, sequence: String(BigInt(user.sequence) + 1n), changed_at: new Date() };
    ctx.events.userEvent('user.removed', removed);
    return { details: userDetails(removed) };
  });

  app.post('/v2/users/:userId/password', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'SetPasswordRequest');
    const body = parseInput(setPasswordRequest, request.body, 'SetPasswordRequest');
    checkPasswordPolicy(body.newPassword.password);
    const user = await store.transaction(async (db) => {
      const current = await lockUser(db, ctx, userId);
      await checkCurrentPassword(current, body.currentPassword, body.verificationCode);
      return store.updateUser(db, userId, await newPasswordFields(body.newPassword, current.state));
    });
    if (!user) throw userNotFound();
    ctx.events.userEvent('user.human.password.changed', user);
    return { details: userDetails(user) };
  });

  app.post('/v2/users/:userId/email', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'SetEmailRequest');
    const body = parseInput(emailInput, request.body, 'SetEmailRequest');
    const result = await store.transaction(async (db) =>
      changeEmail(db, ctx, await lockUser(db, ctx, userId), body),
    );
    result.deliver?.();
    ctx.events.userEvent(
      result.user.email_verified ? 'user.human.email.verified' : 'user.human.email.changed',
      result.user,
    );
    return {
      details: userDetails(result.user),
      ...(body.returnCode !== undefined && result.code ? { verificationCode: result.code } : {}),
    };
  });

  app.post('/v2/users/:userId/email/resend', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'ResendEmailCodeRequest');
    const body = parseInput(resendEmailCodeRequest, request.body, 'ResendEmailCodeRequest');
    const result = await store.transaction(async (db) => {
      const user = await lockUser(db, ctx, userId);
      if (user.email_verified) throw failedPrecondition('COMMAND-5xrra88eq8', 'Email is already verified');
      const issued = await issueEmailCode(db, ctx, user, body.returnCode !== undefined);
      const updated = (await store.updateUser(db, userId, {})) ?? user;
      return { user: updated, ...issued };
    });
    result.deliver();
    ctx.events.userEvent('user.human.email.code.added', result.user);
    return {
      details: userDetails(result.user),
      ...(body.returnCode !== undefined ? { verificationCode: result.code } : {}),
    };
  });

  app.post('/v2/users/:userId/email/verify', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'VerifyEmailRequest');
    const body = parseInput(verifyEmailRequest, request.body, 'VerifyEmailRequest');
    const user = await store.transaction(async (db) => {
      await lockUser(db, ctx, userId);
      const stored = await store.getEmailCode(db, userId);
      if (!stored || stored.expired || stored.code !== body.verificationCode.trim()) {
        // Counted and committed before the error: a code dies after EMAIL_CODE_MAX_ATTEMPTS wrong guesses.
        if (stored) await store.recordEmailCodeFailure(db, userId, EMAIL_CODE_MAX_ATTEMPTS);
        return 'wrong' as const;
      }
      await store.deleteEmailCode(db, userId);
      return store.updateUser(db, userId, { email_verified: true });
    });
    if (user === 'wrong') throw invalidArgument('CODE-woT0xc', 'Code is invalid');
    if (!user) throw userNotFound();
    ctx.events.userEvent('user.human.email.verified', user);
    return { details: userDetails(user) };
  });
}
