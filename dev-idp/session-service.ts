import { randomBytes } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import { SessionSchema } from '@zitadel/proto/zitadel/session/v2/session_pb.js';
import type { SessionService } from '@zitadel/proto/zitadel/session/v2/session_service_pb.js';
import { SecondFactorType } from '@zitadel/proto/zitadel/settings/v2/login_settings_pb.js';
import type { SettingsService } from '@zitadel/proto/zitadel/settings/v2/settings_service_pb.js';
import { ResourceOwnerType } from '@zitadel/proto/zitadel/settings/v2/settings_pb.js';
import type { IdpContext } from './context.js';
import { assertUserCanSignIn, checkUserPassword, sameSecret } from './credentials.js';
import { invalidRequest, notFound, permissionDenied } from './errors.js';
import { details, listDetails, listPage, text } from './messages.js';
import { type SessionRow, type UserRow, sha256 } from './store.js';
import { userNotFound } from './user-service.js';

const sessionNotFound = () => notFound('QUERY-SFeaa', 'Session not found');

/** zitadel.session.v2.Session */
function presentSession(session: SessionRow, user: UserRow) {
  return create(SessionSchema, {
    id: session.id,
    creationDate: timestampFromDate(session.created_at),
    changeDate: timestampFromDate(session.changed_at),
    sequence: BigInt(session.sequence),
    factors: {
      user: {
        verifiedAt: timestampFromDate(session.user_checked_at),
        id: user.id,
        loginName: user.username,
        displayName: user.display_name,
        organizationId: user.org_id,
      },
      password: session.password_checked_at
        ? { verifiedAt: timestampFromDate(session.password_checked_at) }
        : undefined,
    },
    userAgent: (session.user_agent ?? undefined) as never,
    expirationDate: session.expires_at ? timestampFromDate(session.expires_at) : undefined,
  });
}

/** zitadel.session.v2.SessionService: sessions with a user check and a password check (TOTP is the login page's). */
export function sessionService(ctx: IdpContext): Partial<ServiceImpl<typeof SessionService>> {
  const { store } = ctx;

  /** The session, when it exists and the token (if given) is its own. */
  const owned = async (sessionId: string, sessionToken: string | undefined) => {
    const session = await store.getSession(store.pool, sessionId);
    if (!session) throw sessionNotFound();
    if (sessionToken !== undefined && !sameSecret(sha256(sessionToken), session.token_hash))
      throw permissionDenied('COMMAND-sGr42', 'Session token is invalid');
    return session;
  };

  return {
    async createSession(req) {
      const what = 'CreateSessionRequest';
      const search = req.checks?.user?.search;
      if (!search?.case) throw invalidRequest(what, 'checks.user', 'is required');
      const id = text(what, `checks.user.${search.case}`, search.value);
      const lifetime = req.lifetime && Number(req.lifetime.seconds) + req.lifetime.nanos / 1e9;
      if (lifetime !== undefined && !(lifetime > 0))
        throw invalidRequest(what, 'lifetime', 'must be positive');
      const password = req.checks?.password;
      if (password) text(what, 'checks.password.password', password.password, { trim: false });
      const user =
        search.case === 'userId'
          ? await store.getUser(store.pool, id)
          : await store.findUserByLoginName(store.pool, id);
      if (!user) throw userNotFound();
      assertUserCanSignIn(user);
      // Outside a transaction on purpose: a failed check must still count against the lockout limit.
      if (password) await checkUserPassword(store, store.pool, user, password.password, ctx.events);
      const token = randomBytes(32).toString('base64url');
      const session = await store.insertSession(store.pool, {
        userId: user.id,
        token,
        passwordChecked: password !== undefined,
        userAgent: req.userAgent,
        lifetimeSeconds: lifetime,
      });
      return { details: details(session, user.org_id), sessionId: session.id, sessionToken: token };
    },

    async getSession(req) {
      const session = await owned(req.sessionId, req.sessionToken);
      const user = await store.getUser(store.pool, session.user_id);
      if (!user) throw sessionNotFound();
      return { session: presentSession(session, user) };
    },

    async listSessions(req) {
      const { rows, total } = await listPage<SessionRow & { user: UserRow }>(store.pool, req.query, {
        select: 's.*, to_jsonb(u.*) AS user',
        from: 'dev_idp.sessions s JOIN dev_idp.users u ON u.id = s.user_id',
        where: (params) =>
          req.queries.map(({ query }) => {
            if (query.case === 'idsQuery') return `s.id = ANY(${params.add(query.value.ids)}::text[])`;
            if (query.case === 'userIdQuery') return `s.user_id = ${params.add(query.value.id)}`;
            throw invalidRequest(
              'ListSessionsRequest',
              'queries',
              'only idsQuery and userIdQuery are supported',
            );
          }),
        order: ['s.created_at', 's.id'],
      });
      return {
        details: listDetails(total),
        sessions: rows.map(({ user, ...session }) => presentSession(session, user)),
      };
    },

    async deleteSession(req) {
      const session = await owned(req.sessionId, req.sessionToken);
      await store.deleteSession(store.pool, session.id);
      const user = await store.getUser(store.pool, session.user_id);
      return { details: details({ ...session, changed_at: new Date() }, user?.org_id ?? ctx.orgId) };
    },
  };
}

/** zitadel.settings.v2.SettingsService: the instance's login and password complexity policies. */
export function settingsService(ctx: IdpContext): Partial<ServiceImpl<typeof SettingsService>> {
  const policyDetails = () =>
    details({ sequence: '1', changed_at: new Date(0), created_at: new Date(0) }, ctx.orgId);
  const hours = (h: number) => ({ seconds: BigInt(h * 3600) });
  return {
    getLoginSettings: () => ({
      details: policyDetails(),
      settings: {
        ...ctx.loginSettings,
        hidePasswordReset: true,
        passwordCheckLifetime: hours(240),
        externalLoginCheckLifetime: hours(240),
        mfaInitSkipLifetime: hours(720),
        secondFactorCheckLifetime: hours(18),
        multiFactorCheckLifetime: hours(12),
        secondFactors: [SecondFactorType.OTP],
        disableLoginWithPhone: true,
        resourceOwnerType: ResourceOwnerType.INSTANCE,
      },
    }),
    getPasswordComplexitySettings: () => ({
      details: policyDetails(),
      settings: {
        ...ctx.passwordComplexity,
        minLength: BigInt(ctx.passwordComplexity.minLength),
        resourceOwnerType: ResourceOwnerType.INSTANCE,
      },
    }),
  };
}
