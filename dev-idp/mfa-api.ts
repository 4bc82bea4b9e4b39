import type { FastifyInstance } from 'fastify';
import { Secret, TOTP } from 'otpauth';
import { z } from 'zod';
import type { IdpContext, LoginSettings } from './context.js';
import { failedPrecondition, invalidArgument, parseInput } from './errors.js';
import { userDetails } from './presenters.js';
import type { Queryable, Store, UserRow } from './store.js';
import { userNotFound } from './users-api.js';

/**
 * What decides whether a password is enough to sign in, on Zitadel's paths and in its shapes:
 * - user v2 `RegisterTOTP` `POST /v2/users/{userId}/totp` → `{details, uri, secret}`,
 *   `VerifyTOTPRegistration` `POST /v2/users/{userId}/totp/verify` `{code}` → `{details}`,
 *   `RemoveTOTP` `DELETE /v2/users/{userId}/totp` → `{details}`;
 * - user v2 `ListAuthenticationMethodTypes` `GET /v2/users/{userId}/authentication_methods`
 *   → `{details, authMethodTypes}`;
 * - settings v2 `GetLoginSettings` `GET /v2/settings/login[?ctx.orgId=]` → `{details, settings}`.
 */

/** Zitadel's TOTP parameters (its otpauth URIs: SHA1, 6 digits, 30 s). */
const TOTP_PERIOD_SECONDS = 30;
/** One step either side, for clock drift between the device and the server. */
const TOTP_WINDOW = 1;

const userIdParam = z.object({ userId: z.string().min(1).max(200) });
const verifyTotpRequest = z.object({ code: z.string().trim().min(1).max(20) });
const settingsQuery = z.object({
  'ctx.orgId': z.string().max(200).optional(),
  'ctx.instance': z.string().max(10).optional(),
});

function totpFor(ctx: IdpContext, user: UserRow, secret: string): TOTP {
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
 * Checks a code against the user's TOTP generator and accepts its time step at most once (a code seen once
 * is refused again). With `requireVerified`, only a verified generator counts (logins); without, the
 * pending registration is verified by it.
 */
export async function checkTotpCode(
  ctx: IdpContext,
  db: Queryable,
  user: UserRow,
  code: string,
  requireVerified: boolean,
): Promise<boolean> {
  const stored = await ctx.store.getTotp(db, user.id);
  if (!stored || (requireVerified && !stored.verified)) return false;
  if (!/^\d{6}$/.test(code)) return false;
  const now = Date.now();
  const delta = totpFor(ctx, user, stored.secret).validate({
    token: code,
    timestamp: now,
    window: TOTP_WINDOW,
  });
  if (delta === null) return false;
  const step = Math.floor(now / 1000 / TOTP_PERIOD_SECONDS) + delta;
  return ctx.store.useTotpStep(db, user.id, step);
}

export async function hasVerifiedTotp(store: Store, userId: string): Promise<boolean> {
  return (await store.getTotp(store.pool, userId))?.verified === true;
}

function presentLoginSettings(settings: LoginSettings) {
  // Zitadel's gateway emits unpopulated fields too; durations as protobuf Duration strings.
  return {
    allowUsernamePassword: settings.allowUsernamePassword,
    allowRegister: false,
    allowExternalIdp: false,
    forceMfa: settings.forceMfa,
    passkeysType: 'PASSKEYS_TYPE_NOT_ALLOWED',
    hidePasswordReset: true,
    ignoreUnknownUsernames: false,
    defaultRedirectUri: '',
    passwordCheckLifetime: '864000s',
    externalLoginCheckLifetime: '864000s',
    mfaInitSkipLifetime: '2592000s',
    secondFactorCheckLifetime: '64800s',
    multiFactorCheckLifetime: '43200s',
    secondFactors: ['SECOND_FACTOR_TYPE_OTP'],
    multiFactors: [],
    allowDomainDiscovery: false,
    disableLoginWithEmail: false,
    disableLoginWithPhone: true,
    resourceOwnerType: 'RESOURCE_OWNER_TYPE_INSTANCE',
    forceMfaLocalOnly: settings.forceMfaLocalOnly,
  };
}

export function registerMfaRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store } = ctx;

  const requireUser = async (userId: string): Promise<UserRow> => {
    const user = await store.getUser(store.pool, userId);
    if (!user) throw userNotFound();
    return user;
  };

  app.post('/v2/users/:userId/totp', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'RegisterTOTPRequest');
    const user = await requireUser(userId);
    if ((await store.getTotp(store.pool, userId))?.verified) {
      throw failedPrecondition('DEVIDP-TOTP-READY', 'TOTP is already set up; remove it first');
    }
    const secret = new Secret({ size: 20 }).base32;
    await store.putTotp(store.pool, userId, secret);
    return { details: userDetails(user), uri: totpFor(ctx, user, secret).toString(), secret };
  });

  app.post('/v2/users/:userId/totp/verify', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'VerifyTOTPRegistrationRequest');
    const { code } = parseInput(verifyTotpRequest, request.body, 'VerifyTOTPRegistrationRequest');
    const user = await requireUser(userId);
    const stored = await store.getTotp(store.pool, userId);
    if (!stored) throw failedPrecondition('DEVIDP-TOTP-NONE', 'No TOTP registration was started');
    if (stored.verified) throw failedPrecondition('DEVIDP-TOTP-READY', 'TOTP is already set up');
    if (!(await checkTotpCode(ctx, store.pool, user, code, false))) {
      throw invalidArgument('DEVIDP-TOTP-CODE', 'Code is invalid');
    }
    return { details: userDetails(user) };
  });

  app.delete('/v2/users/:userId/totp', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'RemoveTOTPRequest');
    const user = await requireUser(userId);
    if (!(await store.deleteTotp(store.pool, userId))) {
      throw failedPrecondition('DEVIDP-TOTP-NONE', 'TOTP is not set up');
    }
    return { details: userDetails(user) };
  });

  app.get('/v2/users/:userId/authentication_methods', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'ListAuthenticationMethodTypesRequest');
    const user = await requireUser(userId);
    const methods: string[] = [];
    if (user.password_hash) methods.push('AUTHENTICATION_METHOD_TYPE_PASSWORD');
    if (await hasVerifiedTotp(store, userId)) methods.push('AUTHENTICATION_METHOD_TYPE_TOTP');
    return {
      details: { totalResult: String(methods.length), timestamp: new Date().toISOString() },
      authMethodTypes: methods,
    };
  });

  app.get('/v2/settings/login', (request, reply) => {
    parseInput(settingsQuery, request.query, 'GetLoginSettingsRequest');
    return reply.send({
      details: { sequence: '1', changeDate: new Date(0).toISOString(), resourceOwner: ctx.orgId },
      settings: presentLoginSettings(ctx.loginSettings),
    });
  });
}
