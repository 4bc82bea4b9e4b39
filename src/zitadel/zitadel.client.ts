import { createClientFor } from '@zitadel/client';
import {
  createOrganizationServiceClient,
  createSessionServiceClient,
  createSettingsServiceClient,
  createUserServiceClient,
} from '@zitadel/client/v2';
import { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import {
  type Authorization,
  type AuthorizationsSearchFilterSchema,
  State as AuthorizationState,
} from '@zitadel/proto/zitadel/authorization/v2beta/authorization_pb.js';
import { NotificationType } from '@zitadel/proto/zitadel/user/v2/password_pb.js';
import { AuthenticationMethodTypeSchema } from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import { type User, UserStateSchema } from '@zitadel/proto/zitadel/user/v2/user_pb.js';
import { enumToJson, type MessageInitShape } from '@bufbuild/protobuf';
import { ApiError } from '../common/errors/api-error.js';
import { idempotent, withZitadelErrors, zitadelTransport } from './connect-transport.js';
import { Resilience, type CircuitState } from './resilience.js';
import { serviceAccountToken } from './service-account-token.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { ZitadelOidc } from './zitadel-oidc.js';
import { InvalidCredentialsError, UserBlockedError, ZitadelError } from './zitadel.errors.js';
import type {
  AuthenticationMethodType,
  HumanUserChanges,
  LoginSettings,
  NewHumanUser,
  PasswordCheck,
  PasswordComplexitySettings,
  PasswordVerification,
  ZitadelErrorKind,
  ZitadelOrganization,
  ZitadelUser,
  ZitadelUserState,
} from './zitadel.types.js';

export { InvalidCredentialsError, UserBlockedError, ZitadelError } from './zitadel.errors.js';

/**
 * Zitadel wants a given and a family name for every human; this API has one display name. The first word
 * is the given name, the rest the family name (the given name again for a one-word name).
 */
export function namesFromDisplayName(displayName: string): Pick<NewHumanUser, 'givenName' | 'familyName'> {
  const [givenName, ...rest] = displayName.split(/\s+/);
  return { givenName, familyName: rest.join(' ') || givenName };
}

/** A password session only needs to live long enough to read its user. */
const PASSWORD_SESSION_SECONDS = 300n;
/** Zitadel's error ids for a locked user at the password check. */
const LOCKED_ERROR_IDS = new Set(['COMMAND-JLK35', 'COMMAND-SFA3t']);
const WRONG_PASSWORD_ERROR_ID = 'COMMAND-3M0fs';
/** "Errors.User.Password.NotSet": a user who never finished initialisation (invited, no password yet). */
const PASSWORD_NOT_SET_ERROR_ID = 'COMMAND-3nJ4t';
/** Zitadel keeps one authorization per user and project; a page this size holds them all. */
const AUTHORIZATIONS_PER_USER = 100;

const AuthorizationServiceClient = createClientFor(AuthorizationService);

/**
 * Zitadel's APIs and OIDC endpoints as this service uses them: the one boundary the rest of the service
 * calls (tests run it against the embedded dev-idp/, which serves the same descriptors). Built on Zitadel's
 * own TypeScript client (`@zitadel/client`, messages and descriptors from `@zitadel/proto`): user, session,
 * settings and organization services v2, roles through the AuthorizationService v2beta (docs/identity.md
 * says why), on a Connect transport with this service's interceptors. The OIDC side it inherits from
 * ZitadelOidc. No Zitadel path or JSON shape is written here: the descriptors define them.
 */
export class ZitadelClient extends ZitadelOidc {
  private readonly users: ReturnType<typeof createUserServiceClient>;
  private readonly sessions: ReturnType<typeof createSessionServiceClient>;
  private readonly settings: ReturnType<typeof createSettingsServiceClient>;
  private readonly organizations: ReturnType<typeof createOrganizationServiceClient>;
  private readonly authorizations: ReturnType<typeof AuthorizationServiceClient>;

  constructor(connection: ZitadelConnection, logger?: { warn(msg: string): void }) {
    super(connection, new Resilience(connection, logger), logger);
    const token = serviceAccountToken(connection.credentials, this.issuer, (assertion) =>
      this.exchangeAssertion(assertion),
    );
    const transport = zitadelTransport({ baseUrl: this.issuer, token, resilience: this.resilience, logger });
    this.users = withZitadelErrors(createUserServiceClient(transport));
    this.sessions = withZitadelErrors(createSessionServiceClient(transport));
    this.settings = withZitadelErrors(createSettingsServiceClient(transport));
    this.organizations = withZitadelErrors(createOrganizationServiceClient(transport));
    this.authorizations = withZitadelErrors(AuthorizationServiceClient(transport));
  }

  /** The circuit breaker's state, for the metrics. */
  get circuitState(): CircuitState {
    return this.resilience.circuitState;
  }

  // ---- users ---------------------------------------------------------------------------------

  async addHumanUser(user: NewHumanUser): Promise<{ userId: string; emailCode?: string }> {
    const verification =
      user.emailVerification === 'verified'
        ? ({ case: 'isVerified', value: true } as const)
        : user.emailVerification === 'return_code'
          ? ({ case: 'returnCode', value: {} } as const)
          : ({ case: 'sendCode', value: {} } as const);
    // Not retried: a repeat after a lost answer would create the user twice or report a conflict.
    const reply = await this.users.addHumanUser({
      username: user.username,
      organization: { org: { case: 'orgId', value: user.orgId ?? this.connection.orgId } },
      profile: {
        givenName: user.givenName,
        familyName: user.familyName,
        displayName: user.displayName,
        preferredLanguage: user.preferredLanguage,
      },
      email: { email: user.email, verification },
      passwordType:
        user.password === undefined
          ? undefined
          : { case: 'password', value: { password: user.password, changeRequired: false } },
    });
    return reply.emailCode === undefined
      ? { userId: reply.userId }
      : { userId: reply.userId, emailCode: reply.emailCode };
  }

  /** null when Zitadel does not know the id (or the user is deleted). */
  async getUser(userId: string): Promise<ZitadelUser | null> {
    try {
      const { user } = await this.users.getUserByID({ userId }, idempotent());
      const mapped = user && toZitadelUser(user);
      return mapped && mapped.state !== 'USER_STATE_DELETED' ? mapped : null;
    } catch (error) {
      if (isKind(error, 'not_found')) return null;
      throw error;
    }
  }

  /** A page of the users of one organization (the configured one when `orgId` is omitted). */
  async listUsers(page: {
    offset: number;
    limit: number;
    orgId?: string;
  }): Promise<{ total: number; users: ZitadelUser[] }> {
    const organizationId = page.orgId ?? this.connection.orgId;
    const reply = await this.users.listUsers(
      {
        query: { offset: BigInt(page.offset), limit: page.limit, asc: true },
        // One organization a page: reconciliation walks them one after the other.
        queries: [{ query: { case: 'organizationIdQuery', value: { organizationId } } }],
      },
      idempotent(),
    );
    return { total: Number(reply.details?.totalResult ?? 0n), users: reply.result.map(toZitadelUser) };
  }

  // ---- organizations (org v2) ------------------------------------------------------------------

  /** A page of the organizations the service account may read, oldest first. */
  async listOrganizations(page: {
    offset: number;
    limit: number;
  }): Promise<{ total: number; organizations: ZitadelOrganization[] }> {
    const reply = await this.organizations.listOrganizations(
      { query: { offset: BigInt(page.offset), limit: page.limit, asc: true } },
      idempotent(),
    );
    return {
      total: Number(reply.details?.totalResult ?? 0n),
      organizations: reply.result.filter((org) => org.id).map((org) => ({ id: org.id, name: org.name })),
    };
  }

  /** Creates an organization (tests and the development IdP's seeding; the service never calls it). */
  async addOrganization(name: string): Promise<{ orgId: string }> {
    // Not retried: a repeat after a lost answer would report the name as taken.
    const reply = await this.organizations.addOrganization({ name });
    if (!reply.organizationId)
      throw new ZitadelError('unknown', undefined, 'Zitadel did not name the organization it created');
    return { orgId: reply.organizationId };
  }

  async updateHumanUser(userId: string, changes: HumanUserChanges): Promise<void> {
    const { givenName, familyName, displayName } = changes;
    let profile:
      { givenName: string; familyName: string; displayName?: string; preferredLanguage?: string } | undefined;
    if (givenName !== undefined || familyName !== undefined || displayName !== undefined) {
      if (givenName !== undefined && familyName !== undefined) {
        profile = { givenName, familyName, displayName };
      } else {
        // Zitadel's profile update requires both names, so the unchanged ones come from Zitadel itself.
        const current = await this.getUser(userId);
        if (!current) throw new ZitadelError('not_found', undefined, `Zitadel user ${userId} not found`);
        profile = {
          givenName: givenName ?? current.givenName,
          familyName: familyName ?? current.familyName,
          displayName: displayName ?? current.displayName,
          preferredLanguage: current.preferredLanguage,
        };
      }
    }
    if (changes.username === undefined && changes.email === undefined && profile === undefined) return;
    await this.users.updateHumanUser(
      {
        userId,
        username: changes.username,
        email: changes.email === undefined ? undefined : { email: changes.email },
        profile,
      },
      idempotent(),
    );
  }

  /** Each of these succeeds when the user is already in the target state (they are retried safely). */
  deactivateUser(userId: string): Promise<void> {
    return this.changeState('deactivateUser', userId, (state) => state === 'USER_STATE_INACTIVE');
  }

  reactivateUser(userId: string): Promise<void> {
    return this.changeState('reactivateUser', userId, (state) => state !== 'USER_STATE_INACTIVE');
  }

  lockUser(userId: string): Promise<void> {
    return this.changeState('lockUser', userId, (state) => state === 'USER_STATE_LOCKED');
  }

  unlockUser(userId: string): Promise<void> {
    return this.changeState('unlockUser', userId, (state) => state !== 'USER_STATE_LOCKED');
  }

  async deleteUser(userId: string): Promise<void> {
    try {
      await this.users.deleteUser({ userId }, idempotent());
    } catch (error) {
      // Already gone, possibly by our own earlier attempt whose answer was lost.
      if (!isKind(error, 'not_found')) throw error;
    }
  }

  /**
   * Sets a new password proven by the current one or by a password-reset code (`SetPassword` with its
   * `verification`). A wrong current password is InvalidCredentialsError; a wrong, expired or used code a
   * ZitadelError (invalid_argument, failed_precondition or not_found).
   */
  async changePassword(
    userId: string,
    newPassword: string,
    verification: PasswordVerification,
  ): Promise<void> {
    try {
      // Not retried: a code works once, and a repeated wrong password counts against the lockout.
      await this.users.setPassword({
        userId,
        newPassword: { password: newPassword, changeRequired: false },
        verification:
          'currentPassword' in verification
            ? { case: 'currentPassword', value: verification.currentPassword }
            : { case: 'verificationCode', value: verification.verificationCode },
      });
    } catch (error) {
      // Only the wrong-password id: a refused new password is invalid_argument too.
      if (
        'currentPassword' in verification &&
        error instanceof ZitadelError &&
        error.errorId === WRONG_PASSWORD_ERROR_ID
      ) {
        throw new InvalidCredentialsError('The current password is wrong');
      }
      throw error;
    }
  }

  /** `PasswordReset` with `sendLink` by email: Zitadel mails the user a code for changePassword. */
  async requestPasswordReset(userId: string): Promise<void> {
    // Not retried: each call replaces the code and mails another.
    await this.users.passwordReset({
      userId,
      medium: { case: 'sendLink', value: { notificationType: NotificationType.Email } },
    });
  }

  /**
   * `SetEmail` with `sendCode`: Zitadel replaces the address at once (unverified) and mails a code to the
   * new one, which verifyEmail then checks.
   */
  async setEmail(userId: string, email: string): Promise<void> {
    await this.users.setEmail({ userId, email, verification: { case: 'sendCode', value: {} } });
  }

  /** `ResendEmailCode` with `sendCode`: a fresh code for the pending address (the old code dies). */
  async resendEmailCode(userId: string): Promise<void> {
    await this.users.resendEmailCode({ userId, verification: { case: 'sendCode', value: {} } });
  }

  /** Throws ZitadelError kind invalid_argument for a wrong or expired code. */
  async verifyEmail(userId: string, code: string): Promise<void> {
    // Not retried: a lost success would turn the repeat into a "wrong code" answer.
    await this.users.verifyEmail({ userId, verificationCode: code });
  }

  /**
   * Zitadel refuses a transition into the state the user is already in (FailedPrecondition). That
   * counts as success, but only once Zitadel confirms the state: the same error also guards other
   * transitions (e.g. deactivating a user still in its initial state). `rpc`: user v2's call of that name.
   */
  private async changeState(
    rpc: 'deactivateUser' | 'reactivateUser' | 'lockUser' | 'unlockUser',
    userId: string,
    reached: (state: ZitadelUserState) => boolean,
  ): Promise<void> {
    try {
      await this.users[rpc]({ userId }, idempotent());
    } catch (error) {
      if (!isKind(error, 'failed_precondition')) throw error;
      const user = await this.getUser(userId);
      if (!user || !reached(user.state)) throw error;
    }
  }

  // ---- sessions ------------------------------------------------------------------------------

  /**
   * Throws InvalidCredentialsError or UserBlockedError. The user is named by a login name (username or
   * email) or, when `{ userId }`, by Zitadel id (`checks.user.userId`).
   */
  async checkPassword(
    loginName: string | { userId: string },
    password: string,
    userAgent?: { ip?: string; description?: string },
  ): Promise<PasswordCheck> {
    let created: { sessionId: string; sessionToken: string };
    try {
      // Not retried: every attempt counts against Zitadel's lockout policy.
      created = await this.sessions.createSession({
        checks: {
          user: {
            search:
              typeof loginName === 'string'
                ? { case: 'loginName', value: loginName }
                : { case: 'userId', value: loginName.userId },
          },
          password: { password },
        },
        userAgent: userAgent && { ip: userAgent.ip, description: userAgent.description },
        lifetime: { seconds: PASSWORD_SESSION_SECONDS },
      });
    } catch (error) {
      throw passwordCheckFailure(error);
    }
    const { sessionId, sessionToken } = created;
    const { session } = await this.sessions.getSession({ sessionId, sessionToken }, idempotent());
    const userId = session?.factors?.user?.id;
    if (!userId) throw new ZitadelError('unknown', undefined, `Zitadel session ${sessionId} names no user`);
    return { sessionId, sessionToken, userId };
  }

  async deleteSession(sessionId: string, sessionToken?: string): Promise<void> {
    try {
      await this.sessions.deleteSession({ sessionId, sessionToken }, idempotent());
    } catch (error) {
      // Best effort: the session expires on its own, and our own session table is what revokes access.
      if (error instanceof ApiError && error.code === 'upstream_unavailable') throw error;
    }
  }

  // ---- what a login needs besides the password ----------------------------------------------

  /** The user's enrolled authentication methods: password, TOTP, U2F, OTP by SMS or email, IdP links, … */
  async listAuthenticationMethodTypes(userId: string): Promise<AuthenticationMethodType[]> {
    const reply = await this.users.listAuthenticationMethodTypes({ userId }, idempotent());
    return reply.authMethodTypes.map((type) => enumToJson(AuthenticationMethodTypeSchema, type));
  }

  /** The login policy in force for the configured organization. */
  async getLoginSettings(): Promise<LoginSettings> {
    const { settings } = await this.settings.getLoginSettings(
      { ctx: { resourceOwner: { case: 'orgId', value: this.connection.orgId } } },
      idempotent(),
    );
    if (!settings)
      throw new ZitadelError('unknown', undefined, 'Zitadel login settings answer holds no settings');
    return {
      allowUsernamePassword: settings.allowUsernamePassword,
      allowExternalIdp: settings.allowExternalIdp,
      forceMfa: settings.forceMfa,
      forceMfaLocalOnly: settings.forceMfaLocalOnly,
    };
  }

  /** The password complexity policy in force for the configured organization. */
  async getPasswordComplexitySettings(): Promise<PasswordComplexitySettings> {
    const { settings } = await this.settings.getPasswordComplexitySettings(
      { ctx: { resourceOwner: { case: 'orgId', value: this.connection.orgId } } },
      idempotent(),
    );
    if (!settings)
      throw new ZitadelError('unknown', undefined, 'Zitadel password settings answer holds no settings');
    const minLength = Number(settings.minLength);
    return {
      minLength: Number.isSafeInteger(minLength) && minLength > 0 ? minLength : 0,
      requiresUppercase: settings.requiresUppercase,
      requiresLowercase: settings.requiresLowercase,
      requiresNumber: settings.requiresNumber,
      requiresSymbol: settings.requiresSymbol,
    };
  }

  // ---- roles (AuthorizationService v2beta, in the configured organization and project) -----------

  /**
   * The user's role keys in the configured project. Role grants belong to the user's organization:
   * `orgId` names it (omitted: the configured organization).
   */
  async getUserRoles(userId: string, orgId?: string): Promise<string[]> {
    const authorizations = await this.userAuthorizations(userId, orgId ?? this.connection.orgId);
    return [...new Set(authorizations.filter(isActive).flatMap((authorization) => authorization.roles))];
  }

  /** Replaces the user's role keys in the configured project (`orgId`: the user's organization). */
  setUserRoles(userId: string, roles: string[], orgId?: string): Promise<void> {
    return this.applyRoles(userId, [...new Set(roles)], false, orgId ?? this.connection.orgId);
  }

  /**
   * A page of the configured project's role grants, oldest first: the active roles of each grant's user
   * (an inactive grant lists none). Lets reconciliation read everyone's roles without a call per user.
   */
  async listProjectGrants(page: {
    offset: number;
    limit: number;
    orgId?: string;
  }): Promise<{ total: number; grants: Array<{ userId: string; roles: string[] }> }> {
    const reply = await this.authorizations.listAuthorizations(
      {
        pagination: { offset: BigInt(page.offset), limit: page.limit, asc: true },
        filters: this.projectFilters(page.orgId ?? this.connection.orgId),
      },
      idempotent(),
    );
    const grants = reply.authorizations
      .filter(
        (authorization) => authorization.user?.id && authorization.projectId === this.connection.projectId,
      )
      .map((authorization) => ({
        userId: authorization.user!.id,
        roles: isActive(authorization) ? authorization.roles : [],
      }));
    return { total: Number(reply.pagination?.totalResult ?? 0n), grants };
  }

  /** The project's authorizations in one organization (an authorization belongs to its user's). */
  private projectFilters(orgId: string): MessageInitShape<typeof AuthorizationsSearchFilterSchema>[] {
    return [
      { filter: { case: 'projectId', value: { id: this.connection.projectId } } },
      { filter: { case: 'organizationId', value: { id: orgId } } },
    ];
  }

  private async applyRoles(
    userId: string,
    wanted: string[],
    afterConflict: boolean,
    orgId: string,
  ): Promise<void> {
    const [authorization, ...extra] = await this.userAuthorizations(userId, orgId);
    // Zitadel keeps one authorization per user and project; should there be more, the first carries the roles.
    for (const duplicate of extra)
      await this.authorizations.deleteAuthorization({ id: duplicate.id }, idempotent());
    if (!authorization) {
      if (wanted.length === 0) return;
      try {
        await this.authorizations.createAuthorization(
          {
            userId,
            projectId: this.connection.projectId,
            organizationId: orgId,
            roleKeys: wanted,
          },
          idempotent(),
        );
      } catch (error) {
        // Someone (or our own lost attempt) created it meanwhile: update that one instead.
        if (afterConflict || !(error instanceof ApiError) || error.code !== 'conflict') throw error;
        await this.applyRoles(userId, wanted, true, orgId);
      }
    } else if (wanted.length === 0) {
      // Deleting an unknown authorization succeeds ("the desired state is already achieved").
      await this.authorizations.deleteAuthorization({ id: authorization.id }, idempotent());
    } else if (!sameSet(authorization.roles, wanted)) {
      // Skipped when nothing changes: Zitadel answers an unchanged authorization with an error.
      await this.authorizations.updateAuthorization({ id: authorization.id, roleKeys: wanted }, idempotent());
    }
  }

  private async userAuthorizations(userId: string, orgId: string): Promise<Authorization[]> {
    const reply = await this.authorizations.listAuthorizations(
      {
        pagination: { limit: AUTHORIZATIONS_PER_USER, asc: true },
        filters: [{ filter: { case: 'userId', value: { id: userId } } }, ...this.projectFilters(orgId)],
      },
      idempotent(),
    );
    return reply.authorizations.filter(
      (authorization) => authorization.projectId === this.connection.projectId,
    );
  }
}

// ---- helpers -----------------------------------------------------------------------------------

function passwordCheckFailure(error: unknown): unknown {
  if (!(error instanceof ZitadelError)) return error;
  if (error.errorId !== undefined && LOCKED_ERROR_IDS.has(error.errorId))
    return new UserBlockedError('locked');
  if (
    error.errorId === WRONG_PASSWORD_ERROR_ID ||
    error.kind === 'invalid_argument' ||
    error.kind === 'not_found'
  )
    return new InvalidCredentialsError('Invalid login name or password');
  if (error.kind === 'failed_precondition') {
    const initial = error.errorId === PASSWORD_NOT_SET_ERROR_ID || /initiali[sz]/i.test(error.message);
    return new UserBlockedError(initial ? 'initial' : 'inactive');
  }
  return error;
}

function toZitadelUser(user: User): ZitadelUser {
  const human = user.type.case === 'human' ? user.type.value : undefined;
  const profile = human?.profile;
  const mapped: ZitadelUser = {
    userId: user.userId,
    orgId: user.details?.resourceOwner ?? '',
    state: enumToJson(UserStateSchema, user.state),
    username: user.username,
    email: human?.email?.email ?? '',
    emailVerified: human?.email?.isVerified ?? false,
    givenName: profile?.givenName ?? '',
    familyName: profile?.familyName ?? '',
    displayName: profile?.displayName ?? '',
  };
  if (profile?.avatarUrl) mapped.avatarUrl = profile.avatarUrl;
  if (profile?.preferredLanguage) mapped.preferredLanguage = profile.preferredLanguage;
  return mapped;
}

function isKind(error: unknown, kind: ZitadelErrorKind): boolean {
  return error instanceof ZitadelError && error.kind === kind;
}

function isActive(authorization: Authorization): boolean {
  return authorization.state !== AuthorizationState.INACTIVE;
}

function sameSet(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return set.size === b.length && b.every((value) => set.has(value));
}
