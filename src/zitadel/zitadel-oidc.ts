import { createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { JwksClient, type SigningKey } from 'jwks-rsa';
import { ApiError } from '../common/errors/api-error.js';
import { describe, type Resilience, TransientFailure, UNAVAILABLE_MESSAGE } from './resilience.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { ZitadelError } from './zitadel.client.js';
import type { OidcTokens, ZitadelErrorKind, ZitadelTokenClaims } from './zitadel.types.js';

interface RawReply {
  status: number;
  text: string;
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

/** OAuth 2.0 token-endpoint error codes (RFC 6749 §5.2). */
const OAUTH_KIND: Record<string, ZitadelErrorKind> = {
  invalid_request: 'invalid_argument',
  invalid_grant: 'invalid_argument',
  invalid_scope: 'invalid_argument',
  unsupported_grant_type: 'invalid_argument',
  invalid_client: 'unauthenticated',
  unauthorized_client: 'permission_denied',
};
const HTTP_KIND: Record<number, ZitadelErrorKind> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  403: 'permission_denied',
  404: 'not_found',
};

/**
 * Zitadel's OIDC and OAuth endpoints as this service uses them (discovery, authorization URL with PKCE,
 * code exchange, ID-token verification against the JWKS, end-session URL, the JWT-profile grant of the
 * service account), over fetch under the same resilience policies as the API calls.
 */
export class ZitadelOidc {
  private readonly baseUrl: string;
  private discovery?: Promise<Discovery>;
  /** jwks-rsa caches Zitadel's keys by kid and refetches (rate-limited) on an unknown one. */
  private readonly jwks: JwksClient;
  /** The KeyObject of each cached signing key, made once: jsonwebtoken would re-parse a PEM on every call. */
  private readonly keyObjects = new WeakMap<SigningKey, KeyObject>();

  constructor(
    private readonly connection: ZitadelConnection,
    private readonly resilience: Resilience,
    private readonly logger?: { warn(msg: string): void },
  ) {
    this.baseUrl = connection.url.replace(/\/+$/, '');
    this.jwks = new JwksClient({
      // Through our own transport: its timeout, retries and circuit breaker, and 503 for an outage.
      fetcher: () => this.fetchJwks(),
      cache: true,
      cacheMaxAge: JWKS_CACHE_MS,
      rateLimit: true,
      jwksRequestsPerMinute: JWKS_FETCHES_PER_MINUTE,
    });
  }

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

  /** One HTTP exchange under the resilience policies; 5xx and 429 count as transient failures. */
  private send(url: string, init: RequestInit, idempotent: boolean): Promise<RawReply> {
    return this.resilience.run(`${init.method ?? 'GET'} ${pathOf(url)}`, idempotent, async (signal) => {
      let response: Response;
      let text: string;
      try {
        response = await fetch(url, { ...init, redirect: 'manual', signal });
        // Read inside the attempt: the timeout also covers a body that stalls.
        text = await response.text();
      } catch (error) {
        throw new TransientFailure(describe(error));
      }
      if (response.status >= 500 || response.status === 429)
        throw new TransientFailure(`HTTP ${response.status}`);
      return { status: response.status, text };
    });
  }

  private failure(reply: RawReply): Error {
    const body = (parseJson(reply.text) ?? {}) as { error?: unknown; error_description?: unknown };
    const oauthError = typeof body.error === 'string' ? body.error : undefined;
    const kind =
      (oauthError === undefined ? undefined : OAUTH_KIND[oauthError]) ?? HTTP_KIND[reply.status] ?? 'unknown';
    const message =
      typeof body.error_description === 'string' ? body.error_description : reply.text.slice(0, 200);
    return new ZitadelError(kind, reply.status, oauthError, `Zitadel answered ${reply.status}: ${message}`);
  }

  /** The JWT-profile grant: a signed assertion of the service account for an access token. */
  async exchangeAssertion(assertion: string): Promise<{ accessToken: string; expiresIn: number }> {
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

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
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
