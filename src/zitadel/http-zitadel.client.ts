import { createPublicKey, type KeyObject } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { JwksClient, type SigningKey } from 'jwks-rsa';
import { ApiError } from '../common/errors/api-error.js';
import { CircuitBreaker, DEFAULT_CIRCUIT, type CircuitState } from './circuit-breaker.js';
import { serviceAccountToken, type ServiceAccountToken } from './service-account-token.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { InvalidCredentialsError, UserBlockedError, ZitadelClient, ZitadelError } from './zitadel.client.js';
import type {
  AuthenticationMethodType,
  HumanUserChanges,
  LoginSettings,
  NewHumanUser,
  OidcTokens,
  PasswordCheck,
  ZitadelErrorKind,
  ZitadelOrganization,
  ZitadelTokenClaims,
  ZitadelUser,
  ZitadelUserState,
} from './zitadel.types.js';

export interface ZitadelClientLogger {
  warn(msg: string): void;
}

/** The only text about an unreachable IdP that may reach API clients. */
const UNAVAILABLE_MESSAGE = 'The identity provider is unavailable; try again shortly';
const CONFLICT_MESSAGE = 'A user with this email or username already exists';

const BACKOFF_BASE_MS = 100;
const PASSWORD_SESSION_LIFETIME = '300s';
/** Zitadel's error ids for a locked user at the password check. */
const LOCKED_ERROR_IDS = new Set(['COMMAND-JLK35', 'COMMAND-SFA3t']);
const WRONG_PASSWORD_ERROR_ID = 'COMMAND-3M0fs';
/** "Errors.User.Password.NotSet": a user who never finished initialisation (invited, no password yet). */
const PASSWORD_NOT_SET_ERROR_ID = 'COMMAND-3nJ4t';

const GRPC_KIND: Record<number, ZitadelErrorKind> = {
  3: 'invalid_argument',
  5: 'not_found',
  7: 'permission_denied',
  9: 'failed_precondition',
  16: 'unauthenticated',
};
/** Connect-style error bodies name the code instead of numbering it. */
const NAMED_KIND: Record<string, ZitadelErrorKind> = {
  invalid_argument: 'invalid_argument',
  not_found: 'not_found',
  permission_denied: 'permission_denied',
  failed_precondition: 'failed_precondition',
  unauthenticated: 'unauthenticated',
};
const HTTP_KIND: Record<number, ZitadelErrorKind> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
  412: 'failed_precondition',
};
/** OAuth 2.0 token-endpoint error codes (RFC 6749 §5.2). */
const OAUTH_KIND: Record<string, ZitadelErrorKind> = {
  invalid_request: 'invalid_argument',
  invalid_grant: 'invalid_argument',
  invalid_scope: 'invalid_argument',
  unsupported_grant_type: 'invalid_argument',
  invalid_client: 'unauthenticated',
  unauthorized_client: 'permission_denied',
};

interface RawReply {
  status: number;
  text: string;
}

interface RequestOptions {
  body?: unknown;
  /** Whether repeating the call is harmless, so transient failures may be retried. */
  idempotent: boolean;
  /** Management v1 calls act in the organization named by this header (true: the configured one). */
  orgScoped?: boolean | string;
}

interface Discovery {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  endSessionEndpoint?: string;
  jwksUri: string;
}

/** Zitadel's signing keys are remembered this long; an unknown `kid` refetches sooner (rate-limited). */
const JWKS_CACHE_MS = 10 * 60_000;
/** At most this many JWKS fetches a minute for unknown `kid`s, so forged kids cannot hammer Zitadel. */
const JWKS_FETCHES_PER_MINUTE = 10;

// Zitadel's JSON, as far as this client reads it.
interface ApiUser {
  userId?: string;
  details?: { resourceOwner?: string };
  state?: ZitadelUserState;
  username?: string;
  human?: {
    profile?: {
      givenName?: string;
      familyName?: string;
      displayName?: string;
      avatarUrl?: string;
      preferredLanguage?: string;
    };
    email?: { email?: string; isVerified?: boolean };
  };
}
interface UserGrant {
  id: string;
  userId?: string;
  projectId?: string;
  state?: string;
  roleKeys?: string[];
}
interface ErrorBody {
  code?: number | string;
  message?: string;
  details?: { id?: string; debug?: { id?: string } }[];
  error?: string;
  error_description?: string;
}

/**
 * ZitadelClient over Zitadel's REST APIs (user/session v2, management v1 for role grants) and its
 * OIDC endpoints, with Node's fetch. Transport concerns live in `request()`/`send()`.
 */
export class HttpZitadelClient extends ZitadelClient {
  readonly issuer: string;
  private readonly baseUrl: string;
  private readonly serviceToken: ServiceAccountToken;
  private discovery?: Promise<Discovery>;
  private readonly circuit: CircuitBreaker;
  /** jwks-rsa caches Zitadel's keys by kid and refetches (rate-limited) on an unknown one. */
  private readonly jwks: JwksClient;
  /** The KeyObject of each cached signing key, made once: jsonwebtoken would re-parse a PEM on every call. */
  private readonly keyObjects = new WeakMap<SigningKey, KeyObject>();

  constructor(
    private readonly connection: ZitadelConnection,
    private readonly logger?: ZitadelClientLogger,
  ) {
    super();
    this.baseUrl = connection.url.replace(/\/+$/, '');
    this.issuer = this.baseUrl;
    this.circuit = new CircuitBreaker(connection.circuit ?? DEFAULT_CIRCUIT);
    this.serviceToken = serviceAccountToken(connection.credentials, this.baseUrl, (assertion) =>
      this.exchangeAssertion(assertion),
    );
    this.jwks = new JwksClient({
      // Through our own transport: its timeout, retries and circuit breaker, and 503 for an outage.
      fetcher: () => this.fetchJwks(),
      cache: true,
      cacheMaxAge: JWKS_CACHE_MS,
      rateLimit: true,
      jwksRequestsPerMinute: JWKS_FETCHES_PER_MINUTE,
    });
  }

  /** The circuit breaker's state, for the metrics. */
  get circuitState(): CircuitState {
    return this.circuit.state;
  }

  // ---- users ---------------------------------------------------------------------------------

  async addHumanUser(user: NewHumanUser): Promise<{ userId: string; emailCode?: string }> {
    const email =
      user.emailVerification === 'verified'
        ? { email: user.email, isVerified: true }
        : user.emailVerification === 'return_code'
          ? { email: user.email, returnCode: {} }
          : { email: user.email, sendCode: {} };
    const reply = await this.request<{ userId: string; emailCode?: string }>('POST', '/v2/users/human', {
      // Not retried: a repeat after a lost answer would create the user twice or report a conflict.
      idempotent: false,
      body: {
        username: user.username,
        organization: { orgId: user.orgId ?? this.connection.orgId },
        profile: {
          givenName: user.givenName,
          familyName: user.familyName,
          displayName: user.displayName,
          preferredLanguage: user.preferredLanguage,
        },
        email,
        password:
          user.password === undefined ? undefined : { password: user.password, changeRequired: false },
      },
    });
    return reply.emailCode === undefined
      ? { userId: reply.userId }
      : { userId: reply.userId, emailCode: reply.emailCode };
  }

  async getUser(userId: string): Promise<ZitadelUser | null> {
    try {
      const { user } = await this.request<{ user?: ApiUser }>('GET', `/v2/users/${segment(userId)}`, {
        idempotent: true,
      });
      return user && user.state !== 'USER_STATE_DELETED' ? toZitadelUser(user) : null;
    } catch (error) {
      if (isKind(error, 'not_found')) return null;
      throw error;
    }
  }

  async listUsers(page: {
    offset: number;
    limit: number;
    orgId?: string;
  }): Promise<{ total: number; users: ZitadelUser[] }> {
    const reply = await this.request<{ details?: { totalResult?: string | number }; result?: ApiUser[] }>(
      'POST',
      '/v2/users',
      {
        idempotent: true,
        body: {
          query: { offset: page.offset, limit: page.limit, asc: true },
          // One organization a page: reconciliation walks them one after the other.
          queries: [{ organizationIdQuery: { organizationId: page.orgId ?? this.connection.orgId } }],
        },
      },
    );
    return { total: Number(reply.details?.totalResult ?? 0), users: (reply.result ?? []).map(toZitadelUser) };
  }

  // ---- organizations (org v2) ------------------------------------------------------------------

  async listOrganizations(page: {
    offset: number;
    limit: number;
  }): Promise<{ total: number; organizations: ZitadelOrganization[] }> {
    const reply = await this.request<{
      details?: { totalResult?: string | number };
      result?: Array<{ id?: string; name?: string }>;
    }>('POST', '/v2/organizations/_search', {
      idempotent: true,
      body: { query: { offset: page.offset, limit: page.limit, asc: true } },
    });
    const organizations = (reply.result ?? [])
      .filter((org) => typeof org.id === 'string' && org.id)
      .map((org) => ({ id: org.id!, name: org.name ?? '' }));
    return { total: Number(reply.details?.totalResult ?? 0), organizations };
  }

  async addOrganization(name: string): Promise<{ orgId: string }> {
    const reply = await this.request<{ organizationId?: string }>('POST', '/v2/organizations', {
      idempotent: false,
      body: { name },
    });
    if (!reply.organizationId)
      throw new ZitadelError('unknown', 200, undefined, 'Zitadel did not name the organization it created');
    return { orgId: reply.organizationId };
  }

  async updateHumanUser(userId: string, changes: HumanUserChanges): Promise<void> {
    const body: Record<string, unknown> = {};
    if (changes.username !== undefined) body.username = changes.username;
    if (changes.email !== undefined) body.email = { email: changes.email };
    const { givenName, familyName, displayName } = changes;
    if (givenName !== undefined || familyName !== undefined || displayName !== undefined) {
      if (givenName !== undefined && familyName !== undefined) {
        body.profile = { givenName, familyName, displayName };
      } else {
        // Zitadel's profile update requires both names, so the unchanged ones come from Zitadel itself.
        const current = await this.getUser(userId);
        if (!current) throw new ZitadelError('not_found', 404, undefined, `Zitadel user ${userId} not found`);
        body.profile = {
          givenName: givenName ?? current.givenName,
          familyName: familyName ?? current.familyName,
          displayName: displayName ?? current.displayName,
          preferredLanguage: current.preferredLanguage,
        };
      }
    }
    if (Object.keys(body).length === 0) return;
    await this.request('PUT', `/v2/users/human/${segment(userId)}`, { idempotent: true, body });
  }

  deactivateUser(userId: string): Promise<void> {
    return this.changeState(userId, 'deactivate', (state) => state === 'USER_STATE_INACTIVE');
  }

  reactivateUser(userId: string): Promise<void> {
    return this.changeState(userId, 'reactivate', (state) => state !== 'USER_STATE_INACTIVE');
  }

  lockUser(userId: string): Promise<void> {
    return this.changeState(userId, 'lock', (state) => state === 'USER_STATE_LOCKED');
  }

  unlockUser(userId: string): Promise<void> {
    return this.changeState(userId, 'unlock', (state) => state !== 'USER_STATE_LOCKED');
  }

  async deleteUser(userId: string): Promise<void> {
    try {
      await this.request('DELETE', `/v2/users/${segment(userId)}`, { idempotent: true });
    } catch (error) {
      // Already gone, possibly by our own earlier attempt whose answer was lost.
      if (!isKind(error, 'not_found')) throw error;
    }
  }

  async setPassword(userId: string, password: string, changeRequired: boolean): Promise<void> {
    await this.request('POST', `/v2/users/${segment(userId)}/password`, {
      idempotent: true,
      body: { newPassword: { password, changeRequired } },
    });
  }

  async verifyEmail(userId: string, code: string): Promise<void> {
    // Not retried: a lost success would turn the repeat into a "wrong code" answer.
    await this.request('POST', `/v2/users/${segment(userId)}/email/verify`, {
      idempotent: false,
      body: { verificationCode: code },
    });
  }

  /**
   * Zitadel refuses a transition into the state the user is already in (FailedPrecondition). That
   * counts as success, but only once Zitadel confirms the state: the same error also guards other
   * transitions (e.g. deactivating a user still in its initial state).
   */
  private async changeState(
    userId: string,
    action: 'deactivate' | 'reactivate' | 'lock' | 'unlock',
    reached: (state: ZitadelUserState) => boolean,
  ): Promise<void> {
    try {
      await this.request('POST', `/v2/users/${segment(userId)}/${action}`, { idempotent: true, body: {} });
    } catch (error) {
      if (!isKind(error, 'failed_precondition')) throw error;
      const user = await this.getUser(userId);
      if (!user || !reached(user.state)) throw error;
    }
  }

  // ---- sessions ------------------------------------------------------------------------------

  async checkPassword(
    loginName: string,
    password: string,
    userAgent?: { ip?: string; description?: string },
  ): Promise<PasswordCheck> {
    let created: { sessionId: string; sessionToken: string };
    try {
      created = await this.request('POST', '/v2/sessions', {
        // Not retried: every attempt counts against Zitadel's lockout policy.
        idempotent: false,
        body: {
          checks: { user: { loginName }, password: { password } },
          userAgent: userAgent && { ip: userAgent.ip, description: userAgent.description },
          lifetime: PASSWORD_SESSION_LIFETIME,
        },
      });
    } catch (error) {
      throw passwordCheckFailure(error);
    }
    const { sessionId, sessionToken } = created;
    const { session } = await this.request<{ session?: { factors?: { user?: { id?: string } } } }>(
      'GET',
      `/v2/sessions/${segment(sessionId)}?${new URLSearchParams({ sessionToken }).toString()}`,
      { idempotent: true },
    );
    const userId = session?.factors?.user?.id;
    if (!userId)
      throw new ZitadelError('unknown', 200, undefined, `Zitadel session ${sessionId} names no user`);
    return { sessionId, sessionToken, userId };
  }

  async deleteSession(sessionId: string, sessionToken?: string): Promise<void> {
    try {
      await this.request('DELETE', `/v2/sessions/${segment(sessionId)}`, {
        idempotent: true,
        body: sessionToken === undefined ? {} : { sessionToken },
      });
    } catch (error) {
      // Best effort: the session expires on its own, and our own session table is what revokes access.
      if (error instanceof ApiError && error.code === 'upstream_unavailable') throw error;
    }
  }

  // ---- what a login needs besides the password ----------------------------------------------

  async listAuthenticationMethodTypes(userId: string): Promise<AuthenticationMethodType[]> {
    const reply = await this.request<{ authMethodTypes?: AuthenticationMethodType[] }>(
      'GET',
      `/v2/users/${segment(userId)}/authentication_methods`,
      { idempotent: true },
    );
    return Array.isArray(reply.authMethodTypes) ? reply.authMethodTypes : [];
  }

  async getLoginSettings(): Promise<LoginSettings> {
    const query = new URLSearchParams({ 'ctx.orgId': this.connection.orgId });
    const { settings } = await this.request<{ settings?: Partial<Record<keyof LoginSettings, unknown>> }>(
      'GET',
      `/v2/settings/login?${query.toString()}`,
      { idempotent: true },
    );
    if (!settings || typeof settings !== 'object')
      throw new ZitadelError('unknown', 200, undefined, 'Zitadel login settings answer holds no settings');
    // protojson leaves out false booleans: only an explicit true counts.
    return {
      allowUsernamePassword: settings.allowUsernamePassword === true,
      allowExternalIdp: settings.allowExternalIdp === true,
      forceMfa: settings.forceMfa === true,
      forceMfaLocalOnly: settings.forceMfaLocalOnly === true,
    };
  }

  // ---- role grants (management API v1, in the configured organization) ----------------------

  async getUserRoles(userId: string, orgId?: string): Promise<string[]> {
    const grants = await this.projectGrants(userId, orgId);
    return [...new Set(grants.filter(isActiveGrant).flatMap((grant) => grant.roleKeys ?? []))];
  }

  setUserRoles(userId: string, roles: string[], orgId?: string): Promise<void> {
    return this.applyRoles(userId, [...new Set(roles)], false, orgId ?? this.connection.orgId);
  }

  async listProjectGrants(page: {
    offset: number;
    limit: number;
    orgId?: string;
  }): Promise<{ total: number; grants: Array<{ userId: string; roles: string[] }> }> {
    const { projectId } = this.connection;
    const reply = await this.request<{ details?: { totalResult?: string | number }; result?: UserGrant[] }>(
      'POST',
      '/management/v1/users/grants/_search',
      {
        idempotent: true,
        orgScoped: page.orgId ?? true,
        body: {
          query: { offset: page.offset, limit: page.limit, asc: true },
          queries: [{ projectIdQuery: { projectId } }],
        },
      },
    );
    const grants = (reply.result ?? [])
      .filter((grant) => grant.userId && (grant.projectId === undefined || grant.projectId === projectId))
      .map((grant) => ({ userId: grant.userId!, roles: isActiveGrant(grant) ? (grant.roleKeys ?? []) : [] }));
    return { total: Number(reply.details?.totalResult ?? 0), grants };
  }

  private async applyRoles(
    userId: string,
    wanted: string[],
    afterConflict: boolean,
    orgId: string,
  ): Promise<void> {
    const [grant, ...extra] = await this.projectGrants(userId, orgId);
    // Zitadel keeps one grant per user and project; should there be more, the first one carries the roles.
    for (const duplicate of extra) await this.removeGrant(userId, duplicate.id, orgId);
    if (!grant) {
      if (wanted.length === 0) return;
      try {
        await this.request('POST', `/management/v1/users/${segment(userId)}/grants`, {
          idempotent: true,
          orgScoped: orgId,
          body: { projectId: this.connection.projectId, roleKeys: wanted },
        });
      } catch (error) {
        // Someone (or our own lost attempt) created it meanwhile: update that one instead.
        if (afterConflict || !(error instanceof ApiError) || error.code !== 'conflict') throw error;
        await this.applyRoles(userId, wanted, true, orgId);
      }
    } else if (wanted.length === 0) {
      await this.removeGrant(userId, grant.id, orgId);
    } else if (!sameSet(grant.roleKeys ?? [], wanted)) {
      // Skipped when nothing changes: Zitadel answers an unchanged grant with an error.
      await this.request('PUT', `/management/v1/users/${segment(userId)}/grants/${segment(grant.id)}`, {
        idempotent: true,
        orgScoped: orgId,
        body: { roleKeys: wanted },
      });
    }
  }

  private async projectGrants(userId: string, orgId?: string): Promise<UserGrant[]> {
    const { projectId } = this.connection;
    const reply = await this.request<{ result?: UserGrant[] }>(
      'POST',
      '/management/v1/users/grants/_search',
      {
        idempotent: true,
        orgScoped: orgId ?? true,
        body: {
          query: { limit: 100 },
          queries: [{ userIdQuery: { userId } }, { projectIdQuery: { projectId } }],
        },
      },
    );
    return (reply.result ?? []).filter(
      (grant) => grant.projectId === undefined || grant.projectId === projectId,
    );
  }

  private async removeGrant(userId: string, grantId: string, orgId: string): Promise<void> {
    try {
      await this.request('DELETE', `/management/v1/users/${segment(userId)}/grants/${segment(grantId)}`, {
        idempotent: true,
        orgScoped: orgId,
      });
    } catch (error) {
      if (!isKind(error, 'not_found')) throw error;
    }
  }

  // ---- OIDC ----------------------------------------------------------------------------------

  async authorizationUrl(params: {
    state: string;
    nonce: string;
    codeChallenge: string;
    loginHint?: string;
  }): Promise<string> {
    const { authorizationEndpoint } = await this.discover();
    const { clientId, redirectUri, projectId } = this.connection;
    const url = new URL(authorizationEndpoint);
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('redirect_uri', redirectUri);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set(
      'scope',
      `openid profile email urn:zitadel:iam:org:project:id:${projectId}:aud urn:zitadel:iam:org:projects:roles`,
    );
    url.searchParams.set('state', params.state);
    url.searchParams.set('nonce', params.nonce);
    url.searchParams.set('code_challenge', params.codeChallenge);
    url.searchParams.set('code_challenge_method', 'S256');
    if (params.loginHint !== undefined) url.searchParams.set('login_hint', params.loginHint);
    return url.toString();
  }

  async exchangeCode(params: { code: string; codeVerifier: string }): Promise<OidcTokens> {
    const { tokenEndpoint } = await this.discover();
    const { clientId, clientSecret, redirectUri } = this.connection;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (clientSecret !== undefined) {
      // RFC 6749 §2.3.1: both parts are form-encoded before the Basic encoding.
      const credentials = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
      headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
    }
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code: params.code,
      redirect_uri: redirectUri,
      client_id: clientId,
      code_verifier: params.codeVerifier,
    });
    // Not retried: an authorization code is single-use.
    const reply = await this.send(tokenEndpoint, { method: 'POST', headers, body: form.toString() }, false);
    if (!isSuccess(reply.status)) throw this.failure(reply);
    const tokens = parseJson(reply.text) as { id_token?: string; access_token?: string; expires_in?: number };
    if (typeof tokens.id_token !== 'string' || typeof tokens.access_token !== 'string')
      throw new ZitadelError(
        'unknown',
        reply.status,
        undefined,
        'Zitadel token response lacks id_token or access_token',
      );
    return {
      idToken: tokens.id_token,
      accessToken: tokens.access_token,
      expiresIn: Number(tokens.expires_in ?? 0),
    };
  }

  async verifyIdToken(idToken: string, nonce: string): Promise<ZitadelTokenClaims> {
    const { issuer } = await this.discover();
    const kid = keyIdOf(idToken);
    if (kid === undefined) throw rejected(new Error('the token names no signing key'));
    const key = await this.verificationKey(kid);
    let payload: jwt.JwtPayload;
    try {
      payload = jwt.verify(idToken, key, {
        issuer,
        audience: this.connection.clientId,
        algorithms: ['RS256'],
      }) as jwt.JwtPayload;
    } catch (error) {
      throw rejected(error);
    }
    if (typeof payload.exp !== 'number' || typeof payload.sub !== 'string') {
      throw rejected(new Error('exp and sub are required'));
    }
    const claims = zitadelClaims(payload, this.connection.projectId);
    if (claims.nonce !== nonce)
      throw new ZitadelError(
        'unauthenticated',
        401,
        'nonce_mismatch',
        'ID token nonce does not match the login',
      );
    return claims;
  }

  async verificationKey(kid: string): Promise<KeyObject> {
    let signingKey: SigningKey;
    try {
      signingKey = await this.jwks.getSigningKey(kid);
    } catch (error) {
      // An unreachable JWKS endpoint is the IdP's outage (503), not a bad token.
      if (error instanceof ApiError) throw error;
      throw rejected(error);
    }
    let key = this.keyObjects.get(signingKey);
    if (!key) {
      key = createPublicKey(signingKey.getPublicKey());
      this.keyObjects.set(signingKey, key);
    }
    return key;
  }

  async endSessionUrl(params: { idTokenHint: string; postLogoutRedirectUri?: string }): Promise<string> {
    const { endSessionEndpoint } = await this.discover();
    const url = new URL(endSessionEndpoint ?? `${this.baseUrl}/oidc/v1/end_session`);
    url.searchParams.set('id_token_hint', params.idTokenHint);
    url.searchParams.set('client_id', this.connection.clientId);
    const redirect = params.postLogoutRedirectUri ?? this.connection.postLogoutRedirectUri;
    if (redirect !== undefined) url.searchParams.set('post_logout_redirect_uri', redirect);
    return url.toString();
  }

  /** Discovery is fetched once; a failure is not cached, so the next call tries again. */
  private discover(): Promise<Discovery> {
    if (!this.discovery) {
      const loading = this.loadDiscovery();
      this.discovery = loading;
      loading.catch(() => {
        if (this.discovery === loading) this.discovery = undefined;
      });
    }
    return this.discovery;
  }

  private async loadDiscovery(): Promise<Discovery> {
    const url = `${this.baseUrl}/.well-known/openid-configuration`;
    const reply = await this.send(url, { method: 'GET', headers: { accept: 'application/json' } }, true);
    const document = (isSuccess(reply.status) ? parseJson(reply.text) : undefined) as
      Record<string, unknown> | undefined;
    const { issuer, authorization_endpoint, token_endpoint, jwks_uri, end_session_endpoint } = document ?? {};
    if (
      typeof issuer !== 'string' ||
      typeof authorization_endpoint !== 'string' ||
      typeof token_endpoint !== 'string' ||
      typeof jwks_uri !== 'string'
    ) {
      this.logger?.warn(`Zitadel discovery at ${url} answered ${reply.status} without the OIDC endpoints`);
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
    return {
      issuer,
      authorizationEndpoint: authorization_endpoint,
      tokenEndpoint: token_endpoint,
      endSessionEndpoint: typeof end_session_endpoint === 'string' ? end_session_endpoint : undefined,
      jwksUri: jwks_uri,
    };
  }

  private async fetchJwks(): Promise<{ keys: unknown[] }> {
    const { jwksUri } = await this.discover();
    const reply = await this.send(jwksUri, { method: 'GET', headers: { accept: 'application/json' } }, true);
    const body = (isSuccess(reply.status) ? parseJson(reply.text) : undefined) as
      { keys?: unknown } | undefined;
    if (!Array.isArray(body?.keys)) {
      this.logger?.warn(`Zitadel JWKS at ${jwksUri} answered ${reply.status} without keys`);
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
    return { keys: body.keys };
  }

  // ---- transport -----------------------------------------------------------------------------

  /** An authenticated JSON call to Zitadel's API; non-2xx answers become the errors callers branch on. */
  private async request<T = unknown>(method: string, path: string, options: RequestOptions): Promise<T> {
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    for (let refreshed = false; ; refreshed = true) {
      const token = await this.serviceToken.get();
      const headers: Record<string, string> = {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
      };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (options.orgScoped) {
        headers['x-zitadel-orgid'] =
          typeof options.orgScoped === 'string' ? options.orgScoped : this.connection.orgId;
      }
      const reply = await this.send(`${this.baseUrl}${path}`, { method, headers, body }, options.idempotent);
      // A 401 means Zitadel rejected our token before acting, so even a non-idempotent call may repeat.
      if (reply.status === 401 && this.serviceToken.refreshable && !refreshed) {
        this.logger?.warn(
          `Zitadel rejected the service-account token for ${method} ${pathOf(path)}; renewing it`,
        );
        this.serviceToken.invalidate(token);
        continue;
      }
      if (isSuccess(reply.status)) return (parseJson(reply.text) ?? {}) as T;
      throw this.failure(reply);
    }
  }

  /**
   * One HTTP exchange with a timeout per attempt. Network errors, timeouts and 5xx are retried with
   * exponential backoff and jitter when the call is idempotent, then reported as upstream_unavailable.
   */
  private async send(url: string, init: RequestInit, idempotent: boolean): Promise<RawReply> {
    const attempts = idempotent ? 1 + Math.max(0, this.connection.retries) : 1;
    let failure: string;
    for (let attempt = 1; ; attempt++) {
      // While the circuit is open, fail at once instead of waiting for a timeout per call.
      if (!this.circuit.tryAcquire()) throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
      try {
        const response = await fetch(url, {
          ...init,
          redirect: 'manual',
          signal: AbortSignal.timeout(this.connection.timeoutMs),
        });
        // Read inside the attempt: the timeout also covers a body that stalls.
        const text = await response.text();
        if (!isTransient(response.status)) {
          this.circuit.success();
          return { status: response.status, text };
        }
        failure = `HTTP ${response.status}`;
      } catch (error) {
        failure = describe(error);
      }
      if (this.circuit.failure()) {
        this.logger?.warn(`Zitadel circuit open for the next calls after: ${failure}`);
        break;
      }
      if (attempt >= attempts) break;
      await sleep(backoff(attempt));
    }
    this.logger?.warn(
      `Zitadel ${init.method ?? 'GET'} ${pathOf(url)} failed after ${attempts} attempt(s): ${failure}`,
    );
    throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
  }

  /** Zitadel's message text stays in ZitadelError (server logs); ApiErrors carry only our own text. */
  private failure(reply: RawReply): Error {
    const body = (parseJson(reply.text) ?? {}) as ErrorBody;
    if (reply.status === 409 || body.code === 6 || body.code === 'already_exists')
      return ApiError.conflict(CONFLICT_MESSAGE);
    const oauthError = typeof body.error === 'string' ? body.error : undefined;
    const kind =
      (typeof body.code === 'number' ? GRPC_KIND[body.code] : undefined) ??
      (typeof body.code === 'string' ? NAMED_KIND[body.code] : undefined) ??
      (oauthError === undefined ? undefined : OAUTH_KIND[oauthError]) ??
      HTTP_KIND[reply.status] ??
      'unknown';
    const message = body.message ?? body.error_description ?? reply.text.slice(0, 200);
    const errorId = oauthError ?? errorIdOf(body);
    return new ZitadelError(kind, reply.status, errorId, `Zitadel answered ${reply.status}: ${message}`);
  }

  private async exchangeAssertion(assertion: string): Promise<{ accessToken: string; expiresIn: number }> {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion,
      scope: 'openid urn:zitadel:iam:org:project:id:zitadel:aud',
    });
    const url = `${this.baseUrl}/oauth/v2/token`;
    const headers = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    // Repeating the exchange only mints another token, so it is retried like a read.
    const reply = await this.send(url, { method: 'POST', headers, body: form.toString() }, true);
    const token = (isSuccess(reply.status) ? parseJson(reply.text) : undefined) as
      { access_token?: string; expires_in?: number } | undefined;
    if (typeof token?.access_token !== 'string') {
      // A rejected key is a deployment fault; to API clients it looks like the IdP being unusable.
      this.logger?.warn(
        `Zitadel refused the service-account key (${reply.status}): ${this.failure(reply).message}`,
      );
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
    return { accessToken: token.access_token, expiresIn: Number(token.expires_in ?? 0) };
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

function toZitadelUser(user: ApiUser): ZitadelUser {
  const profile = user.human?.profile;
  const email = user.human?.email;
  const mapped: ZitadelUser = {
    userId: user.userId ?? '',
    orgId: user.details?.resourceOwner ?? '',
    state: user.state ?? 'USER_STATE_UNSPECIFIED',
    username: user.username ?? '',
    email: email?.email ?? '',
    // Zitadel omits false booleans from its JSON.
    emailVerified: email?.isVerified === true,
    givenName: profile?.givenName ?? '',
    familyName: profile?.familyName ?? '',
    displayName: profile?.displayName ?? '',
  };
  if (profile?.avatarUrl) mapped.avatarUrl = profile.avatarUrl;
  if (profile?.preferredLanguage) mapped.preferredLanguage = profile.preferredLanguage;
  return mapped;
}

/** The claims of a verified Zitadel token that this service reads; roles from both role claims. */
export function zitadelClaims(payload: jwt.JwtPayload, projectId: string): ZitadelTokenClaims {
  const roles = new Set([
    ...roleKeys(payload['urn:zitadel:iam:org:project:roles']),
    ...roleKeys(payload[`urn:zitadel:iam:org:project:${projectId}:roles`]),
  ]);
  const claims: ZitadelTokenClaims = {
    sub: payload.sub ?? '',
    iss: payload.iss ?? '',
    aud: typeof payload.aud === 'string' ? [payload.aud] : (payload.aud ?? []),
    exp: payload.exp ?? 0,
    roles: [...roles],
  };
  if (typeof payload.email === 'string') claims.email = payload.email;
  if (typeof payload.nonce === 'string') claims.nonce = payload.nonce;
  return claims;
}

/** Zitadel's role claims are objects keyed by role: `{"admin": {"<orgId>": "<orgDomain>"}}`. */
function roleKeys(claim: unknown): string[] {
  return claim !== null && typeof claim === 'object' && !Array.isArray(claim) ? Object.keys(claim) : [];
}

function errorIdOf(body: ErrorBody): string | undefined {
  for (const detail of body.details ?? []) {
    const id = detail.id ?? detail.debug?.id;
    if (typeof id === 'string') return id;
  }
  // Zitadel also appends the id to its message: "Errors.User.Password.Invalid (COMMAND-3M0fs)".
  return /\(([A-Z]+-[A-Za-z0-9]+)\)\s*$/.exec(body.message ?? '')?.[1];
}

function isKind(error: unknown, kind: ZitadelErrorKind): boolean {
  return error instanceof ZitadelError && error.kind === kind;
}

function isActiveGrant(grant: UserGrant): boolean {
  return grant.state !== 'USER_GRANT_STATE_INACTIVE';
}

function sameSet(a: string[], b: string[]): boolean {
  const set = new Set(a);
  return set.size === b.length && b.every((value) => set.has(value));
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

/** 5xx and rate limiting are worth another attempt; other answers would only repeat themselves. */
function isTransient(status: number): boolean {
  return status >= 500 || status === 429;
}

function backoff(attempt: number): number {
  const base = BACKOFF_BASE_MS * 2 ** (attempt - 1);
  return base + Math.random() * (base / 2);
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function segment(value: string): string {
  return encodeURIComponent(value);
}

function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}

/** For log lines: no query string, which may hold a session token. */
function pathOf(url: string): string {
  return url.split('?')[0] ?? url;
}

/** A token Zitadel did not sign as presented; errorId names what refused it (jsonwebtoken's or jwks-rsa's error). */
function rejected(error: unknown): ZitadelError {
  const errorId = error instanceof Error ? error.name : undefined;
  return new ZitadelError('unauthenticated', 401, errorId, `Token rejected: ${describe(error)}`);
}

/** The `kid` of a compact JWS, or undefined when there is none or the header is not JSON. */
function keyIdOf(token: string): string | undefined {
  try {
    const kid = (jwt.decode(token, { complete: true })?.header as { kid?: unknown } | undefined)?.kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.name}: ${error.message}${cause}`;
}
