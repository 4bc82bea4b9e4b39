import { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, customFetch, jwtVerify, type CryptoKey, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { ApiError } from '../common/errors/api-error.js';
import { describe, type Resilience, TransientFailure, UNAVAILABLE_MESSAGE } from './resilience.js';
import { loadOnce } from './load-once.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { ZitadelError } from './zitadel.errors.js';
import type { OidcTokens, ZitadelErrorKind, ZitadelTokenClaims } from './zitadel.types.js';

/** Zitadel's signing keys are remembered this long; an unknown `kid` refetches sooner. */
const JWKS_CACHE_MS = 10 * 60_000;
/** An unknown `kid` refetches the JWKS at most once in this long, so forged kids cannot hammer Zitadel. */
export const JWKS_COOLDOWN_MS = 6_000;

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
 * Zitadel's OIDC and OAuth endpoints as this service uses them, through `openid-client`: discovery, the
 * authorization URL (PKCE S256, state, nonce), the code exchange with its ID-token checks (issuer, audience,
 * azp, expiry, nonce), the end-session URL and RFC 7662 token introspection as this service's API app.
 * Every request goes through the resilience policies (openid-client's `customFetch`). What openid-client
 * leaves out stays here: the ID token's signature against Zitadel's JWKS (jose's remote JWKS, also the keys
 * for JWT access tokens), Zitadel's role claims, and the JWT-profile grant of the service account.
 * ZitadelClient extends it with Zitadel's APIs, so callers find both on the one client.
 */
export class ZitadelOidc {
  /** The OIDC issuer (Zitadel's base URL), which its tokens carry as `iss`. */
  readonly issuer: string;
  /** openid-client's Configuration from discovery, fetched once; a failure is not kept, the next call tries again. */
  private readonly client = loadOnce(() => this.discover());
  /** The API app's configuration, for introspection (same server metadata). */
  private apiApp?: oidc.Configuration;
  /** jose's remote JWKS (made once discovery names its URL): keys cached by kid, refetched on an unknown one. */
  private jwks?: ReturnType<typeof createRemoteJWKSet>;
  /** The KeyObject of each cached signing key, made once, for jsonwebtoken (passport-jwt). */
  private readonly keyObjects = new WeakMap<CryptoKey, KeyObject>();
  /** openid-client's fetch: the resilience policies around Node's. */
  private readonly fetch: oidc.CustomFetch = (url, options) => this.resilientFetch(url, options);

  constructor(
    protected readonly connection: ZitadelConnection,
    protected readonly resilience: Resilience,
    private readonly logger?: { warn(msg: string): void },
  ) {
    this.issuer = connection.url.replace(/\/+$/, '');
  }

  async authorizationUrl(params: {
    state: string;
    nonce: string;
    codeChallenge: string;
    loginHint?: string;
  }): Promise<string> {
    const { redirectUri, projectId } = this.connection;
    const url = oidc.buildAuthorizationUrl(await this.client(), {
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: `openid profile email urn:zitadel:iam:org:project:id:${projectId}:aud urn:zitadel:iam:org:projects:roles`,
      state: params.state,
      nonce: params.nonce,
      code_challenge: params.codeChallenge,
      code_challenge_method: 'S256',
      ...(params.loginHint === undefined ? {} : { login_hint: params.loginHint }),
    });
    return url.toString();
  }

  /**
   * The code exchange (not retried: a code is single-use). openid-client checks the ID token's claims
   * (iss, aud, azp, exp, iat, nonce); verifyIdToken checks its signature. The state was checked by the caller
   * against the browser's cookie before the code got here.
   */
  async exchangeCode(params: { code: string; codeVerifier: string; nonce: string }): Promise<OidcTokens> {
    const callback = new URL(this.connection.redirectUri);
    callback.searchParams.set('code', params.code);
    let tokens: oidc.TokenEndpointResponse;
    try {
      tokens = await oidc.authorizationCodeGrant(await this.client(), callback, {
        pkceCodeVerifier: params.codeVerifier,
        expectedNonce: params.nonce,
        expectedState: oidc.skipStateCheck,
        idTokenExpected: true,
      });
    } catch (error) {
      throw oidcFailure(error);
    }
    if (typeof tokens.id_token !== 'string')
      throw new ZitadelError('unknown', undefined, 'Zitadel token response lacks an id_token');
    return { idToken: tokens.id_token, accessToken: tokens.access_token, expiresIn: tokens.expires_in ?? 0 };
  }

  /** Verifies signature (JWKS), issuer, audience (our client id), expiry and nonce. */
  async verifyIdToken(idToken: string, nonce: string): Promise<ZitadelTokenClaims> {
    const { issuer } = (await this.client()).serverMetadata();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(idToken, await this.keys(), {
        issuer,
        audience: this.connection.clientId,
        algorithms: ['RS256'],
      }));
    } catch (error) {
      throw rejected(error);
    }
    if (typeof payload.exp !== 'number' || typeof payload.sub !== 'string') {
      throw rejected(new Error('exp and sub are required'));
    }
    const claims = zitadelClaims(payload, this.connection.projectId);
    if (claims.nonce !== nonce)
      throw new ZitadelError('unauthenticated', 'nonce_mismatch', 'ID token nonce does not match the login');
    return claims;
  }

  /**
   * The public key Zitadel signs with under this `kid`, from its JWKS (cached; an unknown kid refetches,
   * rate-limited). A kid the JWKS lacks is a ZitadelError (unauthenticated); an unreachable JWKS a 503.
   */
  async verificationKey(kid: string): Promise<KeyObject> {
    let signingKey: CryptoKey;
    try {
      signingKey = await (await this.keys())({ alg: 'RS256', kid });
    } catch (error) {
      throw rejected(error);
    }
    let key = this.keyObjects.get(signingKey);
    if (!key) {
      key = KeyObject.from(signingKey);
      this.keyObjects.set(signingKey, key);
    }
    return key;
  }

  async endSessionUrl(params: { idTokenHint: string; postLogoutRedirectUri?: string }): Promise<string> {
    const redirect = params.postLogoutRedirectUri ?? this.connection.postLogoutRedirectUri;
    const url = oidc.buildEndSessionUrl(await this.client(), {
      id_token_hint: params.idTokenHint,
      ...(redirect === undefined ? {} : { post_logout_redirect_uri: redirect }),
    });
    return url.toString();
  }

  /**
   * RFC 7662 introspection of an access token, authenticated as this service's API app (client secret,
   * Basic). The claims when Zitadel says the token is active, null when it says it is not; an outage is the
   * 503 ApiError. Without introspection credentials every token counts as inactive.
   */
  async introspectToken(token: string): Promise<ZitadelTokenClaims | null> {
    const credentials = this.connection.introspection;
    if (!credentials) return null;
    if (!this.apiApp) {
      const api = new oidc.Configuration(
        (await this.client()).serverMetadata(),
        credentials.clientId,
        undefined,
        oidc.ClientSecretBasic(credentials.clientSecret),
      );
      api[oidc.customFetch] = this.fetch;
      if (this.issuer.startsWith('http:')) oidc.allowInsecureRequests(api);
      this.apiApp = api;
    }
    let answer: oidc.IntrospectionResponse;
    try {
      answer = await oidc.tokenIntrospection(this.apiApp, token, { token_type_hint: 'access_token' });
    } catch (error) {
      throw oidcFailure(error);
    }
    if (answer.active !== true || typeof answer.sub !== 'string' || typeof answer.exp !== 'number')
      return null;
    return zitadelClaims(answer, this.connection.projectId);
  }

  /** The JWT-profile grant: a signed assertion of the service account for an access token. */
  protected async exchangeAssertion(assertion: string): Promise<{ accessToken: string; expiresIn: number }> {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion,
      scope: 'openid urn:zitadel:iam:org:project:id:zitadel:aud',
    });
    // Repeating the exchange only mints another token, so it is retried like a read.
    const response = await this.resilientFetch(`${this.issuer}/oauth/v2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form.toString(),
      redirect: 'manual',
    });
    const text = await response.text();
    const body = parseJson(text) as
      { access_token?: unknown; expires_in?: number; error_description?: unknown } | undefined;
    if (!response.ok || typeof body?.access_token !== 'string') {
      const why = typeof body?.error_description === 'string' ? body.error_description : text.slice(0, 200);
      // A rejected key is a deployment fault; to API clients it looks like the IdP being unusable.
      this.logger?.warn(`Zitadel refused the service-account key (${response.status}): ${why}`);
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
    return { accessToken: body.access_token, expiresIn: Number(body.expires_in ?? 0) };
  }

  private async discover(): Promise<oidc.Configuration> {
    const { clientId, clientSecret } = this.connection;
    try {
      return await oidc.discovery(
        new URL(this.issuer),
        clientId,
        clientSecret,
        clientSecret === undefined ? oidc.None() : oidc.ClientSecretBasic(clientSecret),
        {
          [oidc.customFetch]: this.fetch,
          // dev-idp and local installations speak plain HTTP; production Zitadel is HTTPS.
          execute: this.issuer.startsWith('http:') ? [oidc.allowInsecureRequests] : [],
        },
      );
    } catch (error) {
      const failure = oidcFailure(error);
      if (failure instanceof ApiError) throw failure;
      this.logger?.warn(`Zitadel discovery at ${this.issuer} failed: ${describe(error)}`);
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
  }

  private async keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    if (!this.jwks) {
      const jwksUri = (await this.client()).serverMetadata().jwks_uri;
      if (!jwksUri) throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
      this.jwks = createRemoteJWKSet(new URL(jwksUri), {
        cacheMaxAge: JWKS_CACHE_MS,
        cooldownDuration: JWKS_COOLDOWN_MS,
        // Through the resilience policies (their timeout, retries, breaker and 503), not jose's own timeout.
        [customFetch]: (url, { headers }) => this.fetchJwks(url, Object.fromEntries(headers)),
      });
    }
    return this.jwks;
  }

  private async fetchJwks(url: string, headers: Record<string, string>): Promise<Response> {
    const request = { method: 'GET', headers, body: undefined, redirect: 'manual' } as const;
    const response = await this.resilientFetch(url, request);
    const text = await response.text();
    const body = (response.ok ? parseJson(text) : undefined) as { keys?: unknown } | undefined;
    if (!Array.isArray(body?.keys)) {
      this.logger?.warn(`Zitadel JWKS at ${url} answered ${response.status} without keys`);
      throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
    }
    return Response.json(body);
  }

  /**
   * One HTTP exchange under the resilience policies: network errors, timeouts, 5xx and 429 are transient.
   * Only the code exchange is not repeated (a code is single-use); reads, introspection and the JWT-profile
   * grant are. The body is read inside the attempt, so the timeout also covers a body that stalls.
   */
  private resilientFetch(url: string, options: oidc.CustomFetchOptions): Promise<Response> {
    const repeatable = !this.isCodeExchange(options);
    return this.resilience.run(`${options.method} ${pathOf(url)}`, repeatable, async (signal) => {
      let response: Response;
      let body: ArrayBuffer;
      try {
        response = await fetch(url, {
          ...options,
          signal: options.signal ? AbortSignal.any([options.signal, signal]) : signal,
        });
        body = await response.arrayBuffer();
      } catch (error) {
        throw new TransientFailure(describe(error));
      }
      if (response.status >= 500 || response.status === 429)
        throw new TransientFailure(`HTTP ${response.status}`);
      return new Response(body.byteLength === 0 ? null : body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    });
  }

  private isCodeExchange(options: oidc.CustomFetchOptions): boolean {
    const { body } = options;
    const form =
      body instanceof URLSearchParams ? body : typeof body === 'string' ? new URLSearchParams(body) : null;
    return options.method === 'POST' && form?.get('grant_type') === 'authorization_code';
  }
}

/**
 * What openid-client threw, as callers branch on it: our own 503 (from the fetch) as it is, an OAuth
 * error answer (`invalid_grant`, …) or a failed check of the answer as a ZitadelError.
 */
function oidcFailure(error: unknown): unknown {
  for (let cause: unknown = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof ApiError) return cause;
  }
  if (error instanceof oidc.ResponseBodyError) {
    return new ZitadelError(
      OAUTH_KIND[error.error] ?? HTTP_KIND[error.status] ?? 'unknown',
      error.error,
      `Zitadel answered ${error.status}: ${error.error_description ?? error.error}`,
    );
  }
  if (error instanceof oidc.ClientError) {
    return new ZitadelError(
      'unauthenticated',
      error.code,
      `Zitadel's answer failed a check: ${error.message}`,
    );
  }
  return error;
}

// ---- helpers -----------------------------------------------------------------------------------

/** The claims of a verified Zitadel token that this service reads; roles from both role claims. */
export function zitadelClaims(payload: JWTPayload, projectId: string): ZitadelTokenClaims {
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
  const orgId: unknown = payload['urn:zitadel:iam:user:resourceowner:id'];
  if (typeof orgId === 'string' && orgId) claims.orgId = orgId;
  return claims;
}

/** Zitadel's role claims are objects keyed by role: `{"admin": {"<orgId>": "<orgDomain>"}}`. */
function roleKeys(claim: unknown): string[] {
  return claim !== null && typeof claim === 'object' && !Array.isArray(claim) ? Object.keys(claim) : [];
}

function parseJson(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** For log lines: no query string, which may hold a session token. */
function pathOf(url: string): string {
  return url.split('?')[0] ?? url;
}

/**
 * A token Zitadel did not sign as presented; errorId names jose's error. An unreachable JWKS endpoint stays
 * the IdP's outage (503), not a bad token.
 */
function rejected(error: unknown): unknown {
  if (error instanceof ApiError) return error;
  const errorId = error instanceof Error ? error.name : undefined;
  return new ZitadelError('unauthenticated', errorId, `Token rejected: ${describe(error)}`);
}
