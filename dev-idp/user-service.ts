import { randomInt } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { NotificationType, type Password } from '@zitadel/proto/zitadel/user/v2/password_pb.js';
import type { SetHumanEmail } from '@zitadel/proto/zitadel/user/v2/email_pb.js';
import { type SearchQuery, Type, UserFieldName } from '@zitadel/proto/zitadel/user/v2/query_pb.js';
import { UserSchema, UserState } from '@zitadel/proto/zitadel/user/v2/user_pb.js';
import {
  AuthenticationMethodType,
  type UserService,
} from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import { Secret, TOTP } from 'otpauth';
import type { IdpContext } from './context.js';
import { checkPasswordPolicy, hashPassword, passwordMatches } from './credentials.js';
import { failedPrecondition, invalidArgument, invalidRequest, notFound } from './errors.js';
import { EMAIL, type Params, details, listDetails, listPage, text, textCondition } from './messages.js';
import type { CodeKind, Queryable, UserFields, UserRow } from './store.js';

/** Zitadel's default email code: six characters, upper-case letters and digits, valid for an hour. */
const CODE_ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
const CODE_LIFETIME_SECONDS = 3600;
/** Wrong guesses after which a pending email or password-reset code is deleted: a new one must be sent. */
const CODE_MAX_ATTEMPTS: Record<CodeKind, number> = { email: 5, password: 5 };
/** Zitadel's TOTP parameters (its otpauth URIs: SHA1, 6 digits, 30 s), one step of drift either side. */
const TOTP_PERIOD_SECONDS = 30;
const TOTP_WINDOW = 1;
const MAX_QUERY_DEPTH = 10;

const SORT_COLUMNS: Partial<Record<UserFieldName, string>> = {
  [UserFieldName.USER_NAME]: 'u.username',
  [UserFieldName.FIRST_NAME]: 'u.given_name',
  [UserFieldName.LAST_NAME]: 'u.family_name',
  [UserFieldName.NICK_NAME]: 'u.nick_name',
  [UserFieldName.DISPLAY_NAME]: 'u.display_name',
  [UserFieldName.EMAIL]: 'u.email',
  [UserFieldName.STATE]: 'u.state',
};

/** The Actions v2 event type Zitadel emits for each state change. */
const TRANSITION_EVENTS = {
  deactivate: 'user.deactivated',
  reactivate: 'user.reactivated',
  lock: 'user.locked',
  unlock: 'user.unlocked',
};
type Transition = keyof typeof TRANSITION_EVENTS;

export const userNotFound = () => notFound('QUERY-Dfbg2', 'User could not be found');
const newCode = () =>
  Array.from({ length: 6 }, () => CODE_ALPHABET[randomInt(CODE_ALPHABET.length)]).join('');
const stateOf = (row: UserRow): UserState => UserState[row.state.slice('USER_STATE_'.length) as 'ACTIVE'];
const activeOrInitial = (user: UserRow) => (user.password_hash ? 'USER_STATE_ACTIVE' : 'USER_STATE_INITIAL');

/** zitadel.user.v2.User of a row: every user here is human; the login name is the username. */
export function presentUser(user: UserRow) {
  return create(UserSchema, {
    userId: user.id,
    details: details(user, user.org_id),
    state: stateOf(user),
    username: user.username,
    loginNames: [user.username],
    preferredLoginName: user.username,
    type: {
      case: 'human',
      value: {
        userId: user.id,
        state: stateOf(user),
        username: user.username,
        loginNames: [user.username],
        preferredLoginName: user.username,
        profile: {
          givenName: user.given_name,
          familyName: user.family_name,
          nickName: user.nick_name,
          displayName: user.display_name,
          preferredLanguage: user.preferred_language,
        },
        email: { email: user.email, isVerified: user.email_verified },
        phone: {},
        passwordChangeRequired: user.password_change_required,
        passwordChanged: user.password_changed_at ? timestampFromDate(user.password_changed_at) : undefined,
      },
    },
  });
}

/** zitadel.user.v2.UserService: humans, their passwords, emails and TOTP generators. */
export function userService(ctx: IdpContext): Partial<ServiceImpl<typeof UserService>> {
  const { store } = ctx;

  /** The user, else Zitadel's NotFound; `forUpdate` locks the row until the transaction ends. */
  const userRow = async (db: Queryable, userId: string, forUpdate = false): Promise<UserRow> => {
    const user = await store.getUser(db, userId, forUpdate);
    if (!user) throw userNotFound();
    return user;
  };
  const userDetails = (user: UserRow) => details(user, user.org_id);

  /** Calls a sink (a test's mailbox, else the log); a throwing sink must not fail the request. */
  const deliver = (sink: IdpContext['emailCodeSink'], what: string, user: UserRow, code: string) => {
    try {
      if (sink) sink(user.id, user.email, code);
      else ctx.logger.log(`dev-idp: ${what} for ${user.email} (${user.id}): ${code}`);
    } catch (error) {
      ctx.logger.warn(
        `dev-idp: the ${what} sink threw: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  };

  /** Stores a fresh email code; returns it, and what "mails" it (nothing when the caller wants it returned). */
  const issueEmailCode = async (db: Queryable, user: UserRow, returnCode: boolean) => {
    const code = newCode();
    await store.putCode(db, 'email', user.id, code, CODE_LIFETIME_SECONDS);
    return {
      code,
      send: () => returnCode || deliver(ctx.emailCodeSink, 'email verification code', user, code),
    };
  };

  const emailInput = (what: string, email: string) => text(what, 'email', email, { pattern: EMAIL });

  /** A new email (or re-verification): a code is produced unless the caller declares it verified. */
  const changeEmail = async (
    db: Queryable,
    user: UserRow,
    email: string,
    verification: SetHumanEmail['verification'],
  ) => {
    const verified = verification.case === 'isVerified' && verification.value;
    const updated = await store.updateUser(db, user.id, { email, email_verified: verified });
    if (!updated) throw userNotFound();
    if (verified) {
      await store.deleteCode(db, 'email', user.id);
      return { user: updated, code: undefined, send: undefined };
    }
    return { user: updated, ...(await issueEmailCode(db, updated, verification.case === 'returnCode')) };
  };

  const passwordFields = async (
    what: string,
    password: Password | undefined,
    user: { state: UserRow['state'] },
  ) => {
    if (!password) throw invalidRequest(what, 'password', 'is required');
    text(what, 'password', password.password, { max: 200, trim: false });
    checkPasswordPolicy(password.password, ctx.passwordComplexity);
    return {
      password_hash: await hashPassword(password.password),
      password_change_required: password.changeRequired,
      failed_password_attempts: 0,
      // Setting the first password completes an initial user, as in Zitadel.
      state: user.state === 'USER_STATE_INITIAL' ? 'USER_STATE_ACTIVE' : user.state,
    } satisfies Partial<UserFields>;
  };

  /**
   * Uses up the user's pending code of this kind if `given` is it. A wrong guess counts toward the kind's
   * limit, and is committed although the request fails (the caller returns 'wrong_code' from its
   * transaction, then throws), as Zitadel's code checks are.
   */
  const useCode = async (db: Queryable, kind: CodeKind, userId: string, given: string) => {
    const stored = await store.getCode(db, kind, userId);
    if (!stored || stored.expired || stored.code !== given.trim()) {
      if (stored) await store.recordCodeFailure(db, kind, userId, CODE_MAX_ATTEMPTS[kind]);
      return false;
    }
    await store.deleteCode(db, kind, userId);
    return true;
  };

  /** SetPassword's `verification`: the current password, or a password-reset code. */
  const verify = async (db: Queryable, user: UserRow, verification: { case?: string; value?: string }) => {
    if (verification.case === 'verificationCode') {
      if (!(await useCode(db, 'password', user.id, verification.value ?? ''))) return 'wrong_code';
    } else if (verification.case === 'currentPassword') {
      if (!user.password_hash || !(await passwordMatches(user.password_hash, verification.value ?? '')))
        throw invalidArgument('COMMAND-3M0fs', 'Password is invalid');
    }
    return 'ok';
  };
  const wrongCode = () => invalidArgument('CODE-woT0xc', 'Code is invalid');

  const transition = async (userId: string, to: Transition) => {
    const user = await store.transaction(async (db) => {
      const current = await userRow(db, userId, true);
      const state = current.state;
      if (to === 'deactivate' && state === 'USER_STATE_INITIAL')
        throw failedPrecondition('COMMAND-gvx4kct9r2', 'User in initial state cannot be deactivated');
      if (to === 'deactivate' && state === 'USER_STATE_INACTIVE')
        throw failedPrecondition('COMMAND-5gunjw0cd7', 'User is already inactive');
      if (to === 'reactivate' && state !== 'USER_STATE_INACTIVE')
        throw failedPrecondition('COMMAND-s5qqcz97hf', 'User is not inactive');
      if (to === 'lock' && state !== 'USER_STATE_ACTIVE' && state !== 'USER_STATE_INITIAL')
        throw failedPrecondition('COMMAND-3NN8v', 'User must be active or initial to be locked');
      if (to === 'unlock' && state !== 'USER_STATE_LOCKED')
        throw failedPrecondition('COMMAND-olb9vb0oca', 'User is not locked');
      const next: Partial<UserFields> =
        to === 'deactivate'
          ? { state: 'USER_STATE_INACTIVE' }
          : to === 'lock'
            ? { state: 'USER_STATE_LOCKED' }
            : {
                state: activeOrInitial(current),
                ...(to === 'unlock' ? { failed_password_attempts: 0 } : {}),
              };
      return store.updateUser(db, userId, next);
    });
    if (!user) throw userNotFound();
    ctx.events.userEvent(TRANSITION_EVENTS[to], user);
    return { details: userDetails(user) };
  };

  const totpFor = (user: UserRow, secret: string) => totpGenerator(ctx, user, secret);

  return {
    async addHumanUser(req) {
      const what = 'AddHumanUserRequest';
      if (req.userId !== undefined) text(what, 'userId', req.userId, { pattern: /^[A-Za-z0-9_.@-]+$/ });
      const username = req.username === undefined ? undefined : text(what, 'username', req.username);
      const { profile, email } = req;
      if (!profile) throw invalidRequest(what, 'profile', 'is required');
      if (!email) throw invalidRequest(what, 'email', 'is required');
      const givenName = text(what, 'profile.givenName', profile.givenName);
      const familyName = text(what, 'profile.familyName', profile.familyName);
      const address = emailInput(what, email.email);
      if (req.passwordType.case === 'hashedPassword')
        throw invalidArgument('DEVIDP-HASH', 'hashedPassword is not supported by the development IdP');
      const org = req.organization?.org;
      // Any existing organization by id; by domain, only the configured one (other orgs have no domain here).
      const orgId = org?.case === 'orgId' ? org.value : ctx.orgId;
      if (
        (org?.case === 'orgDomain' && org.value !== ctx.orgDomain) ||
        !(await store.getOrganization(store.pool, orgId))
      )
        throw notFound('QUERY-iTTGJ', 'Organisation not found');
      const password = req.passwordType.case === 'password' ? req.passwordType.value : undefined;
      const fields = password
        ? await passwordFields(what, password, { state: 'USER_STATE_ACTIVE' })
        : undefined;
      const verified = email.verification.case === 'isVerified' && email.verification.value;
      const result = await store.transaction(async (db) => {
        const user = await store.insertUser(
          db,
          orgId,
          {
            username: username ?? address,
            email: address,
            email_verified: verified,
            given_name: givenName,
            family_name: familyName,
            nick_name: text(what, 'profile.nickName', profile.nickName ?? '', { min: 0 }),
            display_name:
              text(what, 'profile.displayName', profile.displayName ?? '', { min: 0 }) ||
              `${givenName} ${familyName}`,
            preferred_language: text(what, 'profile.preferredLanguage', profile.preferredLanguage ?? '', {
              min: 0,
              max: 10,
            }),
            state: 'USER_STATE_INITIAL',
            password_hash: null,
            password_change_required: false,
            failed_password_attempts: 0,
            ...fields,
          },
          req.userId,
        );
        if (verified) return { user, code: undefined, send: undefined };
        return { user, ...(await issueEmailCode(db, user, email.verification.case === 'returnCode')) };
      });
      result.send?.();
      ctx.events.userEvent('user.human.added', result.user, {
        userName: result.user.username,
        email: result.user.email,
      });
      return {
        userId: result.user.id,
        details: userDetails(result.user),
        emailCode: email.verification.case === 'returnCode' ? result.code : undefined,
      };
    },

    async getUserByID(req) {
      const user = await userRow(store.pool, req.userId);
      return { details: userDetails(user), user: presentUser(user) };
    },

    async listUsers(req) {
      const { rows, total } = await listPage<UserRow>(store.pool, req.query, {
        select: 'u.*',
        from: 'dev_idp.users u',
        where: (params) => req.queries.map((q) => userCondition(q, params, 1)),
        order: [SORT_COLUMNS[req.sortingColumn] ?? 'u.created_at', 'u.id'],
      });
      return {
        details: listDetails(total),
        sortingColumn: req.sortingColumn,
        result: rows.map(presentUser),
      };
    },

    async updateHumanUser(req) {
      const what = 'UpdateHumanUserRequest';
      const username = req.username === undefined ? undefined : text(what, 'username', req.username);
      const address = req.email && emailInput(what, req.email.email);
      const result = await store.transaction(async (db) => {
        let user = await userRow(db, req.userId, true);
        const patch: Partial<UserFields> = { username };
        if (req.profile) {
          const p = req.profile;
          Object.assign(patch, {
            given_name: text(what, 'profile.givenName', p.givenName),
            family_name: text(what, 'profile.familyName', p.familyName),
            nick_name: p.nickName,
            display_name: p.displayName?.trim() || undefined,
            preferred_language: p.preferredLanguage,
          });
        }
        if (req.password) {
          const { passwordType, verification } = req.password;
          if ((await verify(db, user, verification)) === 'wrong_code') return 'wrong_code' as const;
          if (passwordType.case !== 'password')
            throw invalidRequest(what, 'password.password', 'is required');
          Object.assign(patch, await passwordFields(what, passwordType.value, user));
        }
        user = (await store.updateUser(db, req.userId, patch)) ?? user;
        const emailChanged =
          req.email && (address !== user.email || req.email.verification.case === 'isVerified');
        if (req.email && address && emailChanged)
          return { ...(await changeEmail(db, user, address, req.email.verification)), emailChanged: true };
        return { user, code: undefined, send: undefined, emailChanged: false };
      });
      if (result === 'wrong_code') throw wrongCode();
      result.send?.();
      // One event per update (each of Zitadel's would carry its own sequence); the receiver re-reads anyway.
      const event = result.emailChanged
        ? 'user.human.email.changed'
        : username !== undefined
          ? 'user.username.changed'
          : req.password && !req.profile
            ? 'user.human.password.changed'
            : 'user.human.profile.changed';
      ctx.events.userEvent(event, result.user);
      return {
        details: userDetails(result.user),
        emailCode: req.email?.verification.case === 'returnCode' ? result.code : undefined,
      };
    },

    deactivateUser: (req) => transition(req.userId, 'deactivate'),
    reactivateUser: (req) => transition(req.userId, 'reactivate'),
    lockUser: (req) => transition(req.userId, 'lock'),
    unlockUser: (req) => transition(req.userId, 'unlock'),

    async deleteUser(req) {
      const user = await store.deleteUser(store.pool, req.userId);
      if (!user) throw userNotFound();
      const removed = { ...user, sequence: String(BigInt(user.sequence) + 1n), changed_at: new Date() };
      ctx.events.userEvent('user.removed', removed);
      return { details: userDetails(removed) };
    },

    async setPassword(req) {
      const fields = await passwordFields('SetPasswordRequest', req.newPassword, {
        state: 'USER_STATE_ACTIVE',
      });
      const user = await store.transaction(async (db) => {
        const current = await userRow(db, req.userId, true);
        if ((await verify(db, current, req.verification)) === 'wrong_code') return 'wrong_code' as const;
        const initial = current.state === 'USER_STATE_INITIAL';
        return store.updateUser(db, req.userId, {
          ...fields,
          state: initial ? 'USER_STATE_ACTIVE' : current.state,
        });
      });
      // Counted and committed before the error, as Zitadel's code checks are.
      if (user === 'wrong_code') throw wrongCode();
      if (!user) throw userNotFound();
      ctx.events.userEvent('user.human.password.changed', user);
      return { details: userDetails(user) };
    },

    // A code for SetPassword's verificationCode, mailed (sendLink) or returned (returnCode).
    async passwordReset(req) {
      if (req.medium.case === 'sendLink' && req.medium.value.notificationType === NotificationType.SMS)
        throw failedPrecondition('DEVIDP-SMS', 'The development IdP sends no SMS');
      const code = newCode();
      const user = await store.transaction(async (db) => {
        const current = await userRow(db, req.userId, true);
        await store.putCode(db, 'password', req.userId, code, CODE_LIFETIME_SECONDS);
        return current;
      });
      const returnCode = req.medium.case === 'returnCode';
      if (!returnCode) deliver(ctx.passwordCodeSink, 'password reset code', user, code);
      ctx.events.userEvent('user.human.password.code.added', user);
      return { details: userDetails(user), verificationCode: returnCode ? code : undefined };
    },

    async setEmail(req) {
      const address = emailInput('SetEmailRequest', req.email);
      const result = await store.transaction(async (db) =>
        changeEmail(db, await userRow(db, req.userId, true), address, req.verification),
      );
      result.send?.();
      const verified = result.user.email_verified;
      ctx.events.userEvent(verified ? 'user.human.email.verified' : 'user.human.email.changed', result.user);
      return {
        details: userDetails(result.user),
        verificationCode: req.verification.case === 'returnCode' ? result.code : undefined,
      };
    },

    async resendEmailCode(req) {
      const result = await store.transaction(async (db) => {
        const user = await userRow(db, req.userId, true);
        if (user.email_verified) throw failedPrecondition('COMMAND-5xrra88eq8', 'Email is already verified');
        const issued = await issueEmailCode(db, user, req.verification.case === 'returnCode');
        return { user: (await store.updateUser(db, req.userId, {})) ?? user, ...issued };
      });
      result.send();
      ctx.events.userEvent('user.human.email.code.added', result.user);
      return {
        details: userDetails(result.user),
        verificationCode: req.verification.case === 'returnCode' ? result.code : undefined,
      };
    },

    async verifyEmail(req) {
      const code = text('VerifyEmailRequest', 'verificationCode', req.verificationCode);
      const user = await store.transaction(async (db) => {
        await userRow(db, req.userId, true);
        if (!(await useCode(db, 'email', req.userId, code))) return 'wrong_code' as const;
        return store.updateUser(db, req.userId, { email_verified: true });
      });
      if (user === 'wrong_code') throw wrongCode();
      if (!user) throw userNotFound();
      ctx.events.userEvent('user.human.email.verified', user);
      return { details: userDetails(user) };
    },

    async listAuthenticationMethodTypes(req) {
      const user = await userRow(store.pool, req.userId);
      const methods = [];
      if (user.password_hash) methods.push(AuthenticationMethodType.PASSWORD);
      if ((await store.getTotp(store.pool, user.id))?.verified) methods.push(AuthenticationMethodType.TOTP);
      return { details: listDetails(methods.length), authMethodTypes: methods };
    },

    async registerTOTP(req) {
      const user = await userRow(store.pool, req.userId);
      if ((await store.getTotp(store.pool, user.id))?.verified)
        throw failedPrecondition('DEVIDP-TOTP-READY', 'TOTP is already set up; remove it first');
      const secret = new Secret({ size: 20 }).base32;
      await store.putTotp(store.pool, user.id, secret);
      return { details: userDetails(user), uri: totpFor(user, secret).toString(), secret };
    },

    async verifyTOTPRegistration(req) {
      const code = text('VerifyTOTPRegistrationRequest', 'code', req.code, { max: 20 });
      const user = await userRow(store.pool, req.userId);
      const stored = await store.getTotp(store.pool, user.id);
      if (!stored) throw failedPrecondition('DEVIDP-TOTP-NONE', 'No TOTP registration was started');
      if (stored.verified) throw failedPrecondition('DEVIDP-TOTP-READY', 'TOTP is already set up');
      if (!(await checkTotpCode(ctx, store.pool, user, code, false)))
        throw invalidArgument('DEVIDP-TOTP-CODE', 'Code is invalid');
      return { details: userDetails(user) };
    },

    async removeTOTP(req) {
      const user = await userRow(store.pool, req.userId);
      if (!(await store.deleteTotp(store.pool, user.id)))
        throw failedPrecondition('DEVIDP-TOTP-NONE', 'TOTP is not set up');
      return { details: userDetails(user) };
    },
  };
}

/** A ListUsers query as SQL; top-level queries are AND-ed, as in Zitadel. */
function userCondition(query: SearchQuery, params: Params, depth: number): string {
  if (depth > MAX_QUERY_DEPTH)
    throw invalidRequest('ListUsersRequest', 'queries', `nest deeper than ${MAX_QUERY_DEPTH} levels`);
  const all = (queries: SearchQuery[], joiner: string, empty: string) =>
    queries.length === 0
      ? empty
      : `(${queries.map((q) => userCondition(q, params, depth + 1)).join(joiner)})`;
  const { case: kind, value: q } = query.query;
  switch (kind) {
    case 'userNameQuery':
      return textCondition('u.username', q.userName, q.method, params);
    case 'loginNameQuery':
      return textCondition('u.username', q.loginName, q.method, params);
    case 'emailQuery':
      return textCondition('u.email', q.emailAddress, q.method, params);
    case 'displayNameQuery':
      return textCondition('u.display_name', q.displayName, q.method, params);
    case 'firstNameQuery':
      return textCondition('u.given_name', q.firstName, q.method, params);
    case 'lastNameQuery':
      return textCondition('u.family_name', q.lastName, q.method, params);
    case 'nickNameQuery':
      return textCondition('u.nick_name', q.nickName, q.method, params);
    case 'stateQuery':
      return `u.state = ${params.add(`USER_STATE_${UserState[q.state]}`)}`;
    case 'typeQuery': // every user here is human: a machine-type query matches nothing
      return q.type === Type.MACHINE ? 'FALSE' : 'TRUE';
    case 'inUserIdsQuery':
      return `u.id = ANY(${params.add(q.userIds)}::text[])`;
    case 'inUserEmailsQuery':
      return `lower(u.email) = ANY(${params.add(q.userEmails.map((e) => e.toLowerCase()))}::text[])`;
    case 'organizationIdQuery':
      return `u.org_id = ${params.add(q.organizationId)}`;
    case 'orQuery':
      return all(q.queries, ' OR ', 'FALSE');
    case 'andQuery':
      return all(q.queries, ' AND ', 'TRUE');
    case 'notQuery':
      return q.query ? `NOT (${userCondition(q.query, params, depth + 1)})` : 'TRUE';
    case 'phoneQuery':
      return 'FALSE'; // no user here has a phone
    case undefined:
      throw invalidRequest('ListUsersRequest', 'queries', 'each query must set a query kind');
  }
}

function totpGenerator(ctx: IdpContext, user: UserRow, secret: string): TOTP {
  return new TOTP({
    issuer: ctx.orgDomain,
    label: user.username,
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_SECONDS,
    secret: Secret.fromBase32(secret),
  });
}

/**
 * Checks a code against the user's TOTP generator and accepts its time step at most once. With
 * `requireVerified`, only a verified generator counts (logins); without, it verifies the pending registration.
 */
export async function checkTotpCode(
  ctx: IdpContext,
  db: Queryable,
  user: UserRow,
  code: string,
  requireVerified: boolean,
): Promise<boolean> {
  const stored = await ctx.store.getTotp(db, user.id);
  if (!stored || (requireVerified && !stored.verified) || !/^\d{6}$/.test(code)) return false;
  const now = Date.now();
  const delta = totpGenerator(ctx, user, stored.secret).validate({
    token: code,
    timestamp: now,
    window: TOTP_WINDOW,
  });
  if (delta === null) return false;
  return ctx.store.useTotpStep(db, user.id, Math.floor(now / 1000 / TOTP_PERIOD_SECONDS) + delta);
}
