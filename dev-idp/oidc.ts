import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { JWTPayload } from 'jose';
import { z } from 'zod';
import type { ClientConfig, IdpContext } from './context.js';
import { MAX_PASSWORD_ATTEMPTS, assertUserCanSignIn, checkUserPassword, sameSecret } from './credentials.js';
import { OAuthError, ZitadelError } from './errors.js';
import { PAGE_HEADERS, loginPage, messagePage, totpPage } from './login-page.js';
import { sha256, type MachineUserRow, type UserRow } from './store.js';
import { checkTotpCode } from './user-service.js';

/** Zitadel's defaults: access and id tokens live 12 hours. */
const ACCESS_TOKEN_LIFETIME_SECONDS = 12 * 3600;
const ID_TOKEN_LIFETIME_SECONDS = 12 * 3600;
const AUTH_CODE_LIFETIME_SECONDS = 60;
const LOGIN_PATH = '/ui/login';
const TOTP_PATH = '/ui/login/totp';
/** How long the TOTP step may follow the password step. */
const SECOND_FACTOR_WINDOW_MS = 10 * 60_000;

const str = (max: number) => z.string().max(max).optional();

/** Parameters of an authorization request, from the query (GET) or a form (POST). */
const authorizeParams = z.object({
  client_id: str(200),
  redirect_uri: str(2000),
  response_type: str(100),
  response_mode: str(50),
  scope: str(2000),
  state: str(2000),
  nonce: str(500),
  code_challenge: str(200),
  code_challenge_method: str(20),
  login_hint: str(200),
  prompt: str(100),
});
type AuthorizeParams = z.output<typeof authorizeParams>;

const loginForm = authorizeParams.extend({ loginName: str(200), password: str(200) });
const totpForm = authorizeParams.extend({
  loginSession: str(200),
  loginSessionToken: str(200),
  otp: str(20),
});

const tokenRequest = z.object({
  grant_type: str(200),
  scope: str(2000),
  code: str(500),
  redirect_uri: str(2000),
  code_verifier: str(500),
  client_id: str(200),
  client_secret: str(500),
});
const tokenOnlyRequest = z.object({
  token: str(10_000),
  token_type_hint: str(100),
  client_id: str(200),
  client_secret: str(500),
});
const endSessionParams = z.object({
  id_token_hint: str(10_000),
  post_logout_redirect_uri: str(2000),
  state: str(2000),
  client_id: str(200),
  logout_hint: str(200),
  ui_locales: str(100),
});

interface AuthRequest {
  client: ClientConfig;
  redirectUri: string;
  scope: string;
  state?: string;
  nonce?: string;
  codeChallenge: string;
  loginHint: string;
}

type Validation =
  | { kind: 'ok'; request: AuthRequest }
  /** No trustworthy redirect_uri: the browser gets an error page, never a redirect. */
  | { kind: 'page'; message: string }
  /** The redirect_uri is registered, so the error goes back to the client as OAuth prescribes. */
  | { kind: 'redirect'; location: string };

function withParams(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [key, value] of Object.entries(params))
    if (value !== undefined) url.searchParams.set(key, value);
  return url.toString();
}

function sendPage(reply: FastifyReply, status: number, html: string): FastifyReply {
  return reply.code(status).headers(PAGE_HEADERS).send(html);
}

function parseOrUndefined<T extends z.ZodType>(schema: T, input: unknown): z.output<T> | undefined {
  const result = schema.safeParse(input ?? {});
  return result.success ? result.data : undefined;
}

function formInput<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (!result.success) throw new OAuthError('invalid_request', 'malformed request parameters');
  return result.data;
}

const USER_MESSAGES: Record<string, string> = {
  'COMMAND-3M0fs': 'Invalid login name or password.',
  'COMMAND-JLK35': 'This user is locked. Ask an administrator to unlock it.',
  'COMMAND-SFA3t': 'This user is locked. Ask an administrator to unlock it.',
  'COMMAND-3nJ4t': 'This user has no password yet.',
  'COMMAND-vgDIu': 'This user is deactivated.',
  MFA_REQUIRED: 'A second factor is required: register an authenticator app (TOTP) first.',
  LOGIN_EXPIRED: 'The login expired; sign in again.',
  WRONG_OTP: 'The code is wrong or was already used.',
};

/** OpenID Connect provider endpoints on Zitadel's paths: discovery, authorize (code + PKCE), token, … */
export function registerOidcRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store, signer } = ctx;
  const url = (path: string) => `${ctx.issuer()}${path}`;

  function validateAuthorize(params: AuthorizeParams): Validation {
    const client = params.client_id ? ctx.clients.get(params.client_id) : undefined;
    if (!client) return { kind: 'page', message: 'The client_id is missing or not registered.' };
    // Exact string comparison, as OAuth 2.1 demands: no prefix or pattern matching.
    if (!params.redirect_uri || !client.redirectUris.includes(params.redirect_uri)) {
      return { kind: 'page', message: 'The redirect_uri is missing or not registered for this client.' };
    }
    const fail = (error: string, description: string): Validation => ({
      kind: 'redirect',
      location: withParams(params.redirect_uri!, {
        error,
        error_description: description,
        state: params.state,
      }),
    });
    if (params.response_type !== 'code')
      return fail('unsupported_response_type', 'only response_type=code is supported');
    if (params.response_mode !== undefined && params.response_mode !== 'query') {
      return fail('invalid_request', 'only response_mode=query is supported');
    }
    const scopes = (params.scope ?? '').split(' ').filter(Boolean);
    if (!scopes.includes('openid')) return fail('invalid_scope', 'the openid scope is required');
    if (!params.code_challenge || params.code_challenge_method !== 'S256') {
      return fail('invalid_request', 'PKCE is required: code_challenge with code_challenge_method=S256');
    }
    if (!/^[A-Za-z0-9_-]{43}$/.test(params.code_challenge)) {
      return fail('invalid_request', 'code_challenge must be a base64url SHA-256 digest');
    }
    if (params.prompt?.split(' ').includes('none')) return fail('login_required', 'the user must sign in');
    return {
      kind: 'ok',
      request: {
        client,
        redirectUri: params.redirect_uri,
        scope: scopes.join(' '),
        state: params.state,
        nonce: params.nonce,
        codeChallenge: params.code_challenge,
        loginHint: params.login_hint ?? '',
      },
    };
  }

  function renderLogin(reply: FastifyReply, request: AuthRequest, loginName: string, error?: string) {
    const html = loginPage({
      action: LOGIN_PATH,
      hidden: authorizeHidden(request),
      clientId: request.client.clientId,
      loginName,
      error,
    });
    return sendPage(reply, 200, html);
  }

  function authorizeHidden(request: AuthRequest): Record<string, string> {
    const hidden: Record<string, string> = {
      client_id: request.client.clientId,
      redirect_uri: request.redirectUri,
      response_type: 'code',
      scope: request.scope,
      code_challenge: request.codeChallenge,
      code_challenge_method: 'S256',
    };
    if (request.state !== undefined) hidden.state = request.state;
    if (request.nonce !== undefined) hidden.nonce = request.nonce;
    return hidden;
  }

  /** The password was right and the user has a TOTP generator: ask for its code, carrying the session. */
  function renderTotp(
    reply: FastifyReply,
    request: AuthRequest,
    login: { user: UserRow; sessionId: string; sessionToken: string },
    error?: string,
  ) {
    const html = totpPage({
      action: TOTP_PATH,
      hidden: {
        ...authorizeHidden(request),
        loginSession: login.sessionId,
        loginSessionToken: login.sessionToken,
      },
      clientId: request.client.clientId,
      loginName: login.user.username,
      error,
    });
    return sendPage(reply, 200, html);
  }

  /** Every check passed: a single-use code for the client, sent back to its redirect URI. */
  async function issueCode(reply: FastifyReply, authRequest: AuthRequest, user: UserRow, sessionId: string) {
    const code = randomBytes(32).toString('base64url');
    await store.insertAuthCode(
      store.pool,
      code,
      {
        client_id: authRequest.client.clientId,
        redirect_uri: authRequest.redirectUri,
        code_challenge: authRequest.codeChallenge,
        nonce: authRequest.nonce ?? null,
        scope: authRequest.scope,
        user_id: user.id,
        session_id: sessionId,
        auth_time: new Date(),
      },
      AUTH_CODE_LIFETIME_SECONDS,
    );
    return reply.redirect(withParams(authRequest.redirectUri, { code, state: authRequest.state }), 302);
  }

  /**
   * An authorization request, from the query or from a form that carries it back (hidden fields come back from
   * the browser, so everything is checked again, exactly as on the way in). When it is not valid, the answer
   * (error page or error redirect) is already sent and `request` is undefined.
   */
  function checkedRequest<T extends z.ZodType<AuthorizeParams>>(
    schema: T,
    input: unknown,
    reply: FastifyReply,
  ) {
    const form = parseOrUndefined(schema, input);
    const validation: Validation = form
      ? validateAuthorize(form)
      : { kind: 'page', message: 'The request is malformed.' };
    if (validation.kind === 'page')
      void sendPage(reply, 400, messagePage('Invalid request', validation.message));
    if (validation.kind === 'redirect') void reply.redirect(validation.location, 302);
    return validation.kind === 'ok'
      ? { form: form!, request: validation.request }
      : { form, request: undefined };
  }

  function authorize(input: unknown, reply: FastifyReply) {
    const { request } = checkedRequest(authorizeParams, input, reply);
    return request ? renderLogin(reply, request, request.loginHint) : reply;
  }

  // --- discovery and keys ---

  app.get('/.well-known/openid-configuration', async (_request, reply) => {
    void reply.header('Cache-Control', 'max-age=60');
    return {
      issuer: ctx.issuer(),
      authorization_endpoint: url('/oauth/v2/authorize'),
      token_endpoint: url('/oauth/v2/token'),
      introspection_endpoint: url('/oauth/v2/introspect'),
      userinfo_endpoint: url('/oidc/v1/userinfo'),
      revocation_endpoint: url('/oauth/v2/revoke'),
      end_session_endpoint: url('/oidc/v1/end_session'),
      jwks_uri: url('/oauth/v2/keys'),
      scopes_supported: ['openid', 'profile', 'email', 'urn:zitadel:iam:org:project:roles'],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'client_credentials'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      code_challenge_methods_supported: ['S256'],
      claims_supported: [
        'sub',
        'aud',
        'exp',
        'iat',
        'iss',
        'auth_time',
        'nonce',
        'azp',
        'at_hash',
        'amr',
        'sid',
        'email',
        'email_verified',
        'preferred_username',
        'name',
        'given_name',
        'family_name',
        'nickname',
        'locale',
        'updated_at',
        'urn:zitadel:iam:org:project:roles',
        'urn:zitadel:iam:user:resourceowner:id',
      ],
      ui_locales_supported: ['en'],
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
    };
  });

  app.get('/oauth/v2/keys', async (_request, reply) => {
    void reply.header('Cache-Control', 'max-age=60');
    return signer.jwks;
  });

  // --- authorization: login page, then a code ---

  app.get('/oauth/v2/authorize', async (request, reply) => authorize(request.query, reply));
  app.post('/oauth/v2/authorize', async (request, reply) => authorize(request.body, reply));

  app.post(LOGIN_PATH, async (request, reply) => {
    const { form, request: authRequest } = checkedRequest(loginForm, request.body, reply);
    if (!authRequest) return reply;
    const loginName = (form.loginName ?? '').trim();
    if (!loginName || !form.password) {
      return renderLogin(reply, authRequest, loginName, 'Enter your login name and password.');
    }
    const user = await store.findUserByLoginName(store.pool, loginName);
    if (!user) return renderLogin(reply, authRequest, loginName, USER_MESSAGES['COMMAND-3M0fs']);
    try {
      assertUserCanSignIn(user);
      await checkUserPassword(store, store.pool, user, form.password, ctx.events);
    } catch (error) {
      if (error instanceof ZitadelError && USER_MESSAGES[error.id]) {
        return renderLogin(reply, authRequest, loginName, USER_MESSAGES[error.id]);
      }
      throw error;
    }
    const sessionToken = randomBytes(32).toString('base64url');
    const session = await store.insertSession(store.pool, {
      userId: user.id,
      token: sessionToken,
      passwordChecked: true,
    });
    if ((await store.getTotp(store.pool, user.id))?.verified) {
      return renderTotp(reply, authRequest, { user, sessionId: session.id, sessionToken });
    }
    if (ctx.loginSettings.forceMfa) {
      return renderLogin(reply, authRequest, loginName, USER_MESSAGES.MFA_REQUIRED);
    }
    return issueCode(reply, authRequest, user, session.id);
  });

  app.post(TOTP_PATH, async (request, reply) => {
    const { form, request: authRequest } = checkedRequest(totpForm, request.body, reply);
    if (!authRequest) return reply;
    // The half-finished login: a session whose password was checked moments ago, proven by its token.
    const session = form.loginSession ? await store.getSession(store.pool, form.loginSession) : undefined;
    const fresh =
      session?.password_checked_at &&
      Date.now() - session.password_checked_at.getTime() < SECOND_FACTOR_WINDOW_MS &&
      form.loginSessionToken !== undefined &&
      sameSecret(sha256(form.loginSessionToken), session.token_hash);
    const user = fresh ? await store.getUser(store.pool, session.user_id) : undefined;
    if (!session || !user || user.state !== 'USER_STATE_ACTIVE') {
      return renderLogin(reply, authRequest, '', USER_MESSAGES.LOGIN_EXPIRED);
    }
    const login = { user, sessionId: session.id, sessionToken: form.loginSessionToken ?? '' };
    if (!(await checkTotpCode(ctx, store.pool, user, (form.otp ?? '').trim(), true))) {
      // Wrong codes count against the same lockout as wrong passwords, so the code cannot be guessed.
      const counted = await store.recordFailedPassword(store.pool, user.id, MAX_PASSWORD_ATTEMPTS);
      if (counted?.state === 'USER_STATE_LOCKED') {
        ctx.events.userEvent('user.locked', counted);
        await store.deleteSession(store.pool, session.id);
        return renderLogin(reply, authRequest, user.username, USER_MESSAGES['COMMAND-SFA3t']);
      }
      return renderTotp(reply, authRequest, login, USER_MESSAGES.WRONG_OTP);
    }
    await store.resetFailedPasswords(store.pool, user.id);
    return issueCode(reply, authRequest, user, session.id);
  });

  // --- token endpoint ---

  /** The client credentials presented: client_secret_basic or client_secret_post (never both). */
  function presentedCredentials(
    authorization: string | undefined,
    form: { client_id?: string; client_secret?: string },
  ): { clientId?: string; secret?: string } {
    let basic: { id: string; secret: string } | undefined;
    if (authorization && /^Basic\s/i.test(authorization)) {
      const decoded = Buffer.from(authorization.replace(/^Basic\s+/i, ''), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
      const decode = (s: string) => {
        try {
          return decodeURIComponent(s.replace(/\+/g, ' '));
        } catch {
          throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
        }
      };
      basic = { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
    }
    if (basic && form.client_secret !== undefined) {
      throw new OAuthError('invalid_request', 'use only one client authentication method');
    }
    if (basic && form.client_id !== undefined && form.client_id !== basic.id) {
      throw new OAuthError('invalid_client', 'client_id does not match the credentials', 401);
    }
    return { clientId: basic?.id ?? form.client_id, secret: basic?.secret ?? form.client_secret };
  }

  /** client_secret_basic, client_secret_post, or none for a public client (which then must use PKCE). */
  function authenticateClient(
    authorization: string | undefined,
    form: { client_id?: string; client_secret?: string },
    purpose: 'token' | 'introspect' | 'revoke',
  ): ClientConfig {
    const { clientId, secret } = presentedCredentials(authorization, form);
    const client = clientId ? ctx.clients.get(clientId) : undefined;
    if (!client) throw new OAuthError('invalid_client', 'client authentication failed', 401);
    if (client.clientSecret !== undefined) {
      if (secret === undefined || !sameSecret(secret, client.clientSecret)) {
        throw new OAuthError('invalid_client', 'client authentication failed', 401);
      }
    } else if (purpose === 'introspect') {
      throw new OAuthError('invalid_client', 'introspection requires a confidential client', 401);
    }
    return client;
  }

  async function issueTokens(
    user: UserRow,
    client: ClientConfig,
    grant: { scope: string; nonce: string | null; authTime: Date; sessionId: string | null },
  ) {
    const now = Math.floor(Date.now() / 1000);
    const roles = await store.activeRoles(store.pool, user.id, ctx.projectId);
    const common = {
      iss: ctx.issuer(),
      sub: user.id,
      aud: [client.clientId, ctx.projectId],
      iat: now,
      ...roleClaims(ctx, roles),
      'urn:zitadel:iam:user:resourceowner:id': user.org_id,
    };
    const jti = randomUUID();
    const accessToken = await signer.sign({
      ...common,
      exp: now + ACCESS_TOKEN_LIFETIME_SECONDS,
      nbf: now,
      jti,
      // As Zitadel's JWT access tokens (and RFC 9068 §2.2): the client in client_id and azp, a jti, and
      // none of the ID token's claims (nonce, at_hash, auth_time, amr).
      client_id: client.clientId,
      azp: client.clientId,
      scope: grant.scope,
      ...(grant.sessionId ? { sid: grant.sessionId } : {}),
    });
    const digest = createHash('sha256').update(accessToken).digest();
    const idToken = await signer.sign({
      ...common,
      exp: now + ID_TOKEN_LIFETIME_SECONDS,
      azp: client.clientId,
      auth_time: Math.floor(grant.authTime.getTime() / 1000),
      amr: ['pwd'],
      at_hash: digest.subarray(0, digest.length / 2).toString('base64url'),
      ...(grant.nonce ? { nonce: grant.nonce } : {}),
      ...(grant.sessionId ? { sid: grant.sessionId } : {}),
      ...profileClaims(user),
    });
    return { jti, accessToken, idToken };
  }

  /** A machine user's client credentials (client_id is its username), or undefined. */
  async function authenticateMachineUser(
    authorization: string | undefined,
    form: { client_id?: string; client_secret?: string },
  ): Promise<MachineUserRow | undefined> {
    const { clientId, secret } = presentedCredentials(authorization, form);
    if (!clientId || secret === undefined) return undefined;
    const machine = await store.getMachineUser(store.pool, { username: clientId });
    return machine && sameSecret(sha256(secret), machine.secret_hash) ? machine : undefined;
  }

  /**
   * The client credentials grant of a machine user, as Zitadel answers it: an opaque access token when the
   * user's token type is Bearer (Zitadel's default), a JWT when it is JWT. The project is in `aud` and the
   * roles in the token only when the scope asks for them, as with Zitadel.
   */
  async function issueMachineToken(machine: MachineUserRow, scope: string): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const scopes = scope.split(/\s+/);
    const wantsProject = scopes.includes(`urn:zitadel:iam:org:project:id:${ctx.projectId}:aud`);
    const wantsRoles = scopes.includes('urn:zitadel:iam:org:projects:roles');
    const jti = randomUUID();
    const claims = {
      iss: ctx.issuer(),
      sub: machine.id,
      aud: wantsProject ? [machine.username, ctx.projectId] : [machine.username],
      iat: now,
      nbf: now,
      exp: now + ACCESS_TOKEN_LIFETIME_SECONDS,
      jti,
      client_id: machine.username,
      scope,
      ...(wantsRoles ? roleClaims(ctx, machine.role_keys) : {}),
      'urn:zitadel:iam:user:resourceowner:id': ctx.orgId,
    };
    if (machine.access_token_type === 'jwt') return signer.sign(claims);
    // Opaque: nothing in it to parse (no dots); only introspection says what it stands for.
    const token = randomBytes(32).toString('base64url');
    await store.insertOpaqueToken(store.pool, token, jti, claims, new Date(claims.exp * 1000));
    return token;
  }

  app.post('/oauth/v2/token', async (request, reply) => {
    const form = formInput(tokenRequest, request.body);
    if (form.grant_type === 'client_credentials') {
      const machine = await authenticateMachineUser(request.headers.authorization, form);
      if (!machine) throw new OAuthError('invalid_client', 'client authentication failed', 401);
      if (machine.state !== 'USER_STATE_ACTIVE')
        throw new OAuthError('invalid_grant', 'the user is not active');
      const scope = form.scope ?? 'openid';
      void reply.headers({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
      return {
        access_token: await issueMachineToken(machine, scope),
        token_type: 'Bearer',
        expires_in: ACCESS_TOKEN_LIFETIME_SECONDS,
        scope,
      };
    }
    const client = authenticateClient(request.headers.authorization, form, 'token');
    if (form.grant_type !== 'authorization_code') {
      throw new OAuthError(
        'unsupported_grant_type',
        'only grant_type=authorization_code and client_credentials are supported',
      );
    }
    if (!form.code) throw new OAuthError('invalid_request', 'code is required');
    const consumed = await store.consumeAuthCode(store.pool, form.code);
    if (!consumed) throw new OAuthError('invalid_grant', 'the authorization code is invalid');
    if ('reused' in consumed) {
      // RFC 6749 §4.1.2: a replayed code should revoke what it already bought.
      const jti = consumed.reused.access_token_jti;
      if (jti)
        await store.revokeToken(store.pool, jti, new Date(Date.now() + ACCESS_TOKEN_LIFETIME_SECONDS * 1000));
      throw new OAuthError('invalid_grant', 'the authorization code has already been used');
    }
    const { row, expired } = consumed;
    if (expired) throw new OAuthError('invalid_grant', 'the authorization code has expired');
    if (row.client_id !== client.clientId)
      throw new OAuthError('invalid_grant', 'the code was issued to another client');
    if (form.redirect_uri !== row.redirect_uri)
      throw new OAuthError('invalid_grant', 'redirect_uri does not match');
    if (!form.code_verifier || !/^[A-Za-z0-9._~-]{43,128}$/.test(form.code_verifier)) {
      throw new OAuthError('invalid_grant', 'a valid code_verifier is required');
    }
    if (!sameSecret(sha256(form.code_verifier), row.code_challenge)) {
      throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
    }
    const user = await store.getUser(store.pool, row.user_id);
    if (!user || user.state !== 'USER_STATE_ACTIVE')
      throw new OAuthError('invalid_grant', 'the user is not active');
    const tokens = await issueTokens(user, client, {
      scope: row.scope,
      nonce: row.nonce,
      authTime: row.auth_time,
      sessionId: row.session_id,
    });
    await store.setAuthCodeToken(store.pool, form.code, tokens.jti);
    void reply.headers({ 'Cache-Control': 'no-store', Pragma: 'no-cache' });
    return {
      access_token: tokens.accessToken,
      token_type: 'Bearer',
      expires_in: ACCESS_TOKEN_LIFETIME_SECONDS,
      id_token: tokens.idToken,
      scope: row.scope,
    };
  });

  /** The claims of a token of ours, unchecked beyond signature and expiry: JWT, or opaque by lookup. */
  async function tokenClaims(token: string): Promise<JWTPayload | undefined> {
    return token.includes('.')
      ? signer.verify(token, ctx.issuer())
      : await store.getOpaqueToken(store.pool, token);
  }

  /**
   * A live access token of ours (JWT or opaque): signature or lookup, issuer, expiry, kind (an ID token has
   * neither jti nor client_id), not revoked, its user (human or machine) still active.
   */
  async function activeAccessToken(
    token: string,
  ): Promise<{ claims: JWTPayload; user?: UserRow; machine?: MachineUserRow } | undefined> {
    const claims = await tokenClaims(token);
    if (!claims || typeof claims.jti !== 'string' || typeof claims.client_id !== 'string' || !claims.sub)
      return undefined;
    if (await store.isTokenRevoked(store.pool, claims.jti)) return undefined;
    const user = await store.getUser(store.pool, claims.sub);
    if (user) return user.state === 'USER_STATE_ACTIVE' ? { claims, user } : undefined;
    const machine = await store.getMachineUser(store.pool, { id: claims.sub });
    return machine?.state === 'USER_STATE_ACTIVE' ? { claims, machine } : undefined;
  }

  const userinfo = async (authorization: string | undefined, reply: FastifyReply) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '')?.[1];
    const active = token ? await activeAccessToken(token) : undefined;
    if (!active) {
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer error="invalid_token"')
        .send({ error: 'invalid_token', error_description: 'the access token is invalid or has expired' });
    }
    if (active.machine) {
      return {
        sub: active.machine.id,
        preferred_username: active.machine.username,
        ...roleClaims(ctx, active.machine.role_keys),
      };
    }
    const user = active.user!;
    const roles = await store.activeRoles(store.pool, user.id, ctx.projectId);
    return {
      sub: user.id,
      ...profileClaims(user),
      ...roleClaims(ctx, roles),
      'urn:zitadel:iam:user:resourceowner:id': user.org_id,
    };
  };
  app.get('/oidc/v1/userinfo', async (request, reply) => userinfo(request.headers.authorization, reply));
  app.post('/oidc/v1/userinfo', async (request, reply) => userinfo(request.headers.authorization, reply));

  app.post('/oauth/v2/introspect', async (request, reply) => {
    const form = formInput(tokenOnlyRequest, request.body);
    authenticateClient(request.headers.authorization, form, 'introspect');
    if (!form.token) throw new OAuthError('invalid_request', 'token is required');
    void reply.header('Cache-Control', 'no-store');
    const active = await activeAccessToken(form.token);
    if (!active) return { active: false };
    const { claims, user, machine } = active;
    // The roles as they are now, when the token was issued for them (Zitadel asserts them the same way).
    const roles = machine ? machine.role_keys : await store.activeRoles(store.pool, user!.id, ctx.projectId);
    const scopes = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : [];
    return {
      active: true,
      scope: claims.scope,
      client_id: claims.client_id,
      token_type: 'Bearer',
      exp: claims.exp,
      iat: claims.iat,
      nbf: claims.nbf,
      sub: claims.sub,
      aud: claims.aud,
      iss: claims.iss,
      jti: claims.jti,
      username: machine ? machine.username : user!.username,
      ...(scopes.includes('urn:zitadel:iam:org:projects:roles') ? roleClaims(ctx, roles) : {}),
    };
  });

  app.post('/oauth/v2/revoke', async (request, reply) => {
    const form = formInput(tokenOnlyRequest, request.body);
    // The app that got the token, or the machine user that did (client credentials).
    const machine = await authenticateMachineUser(request.headers.authorization, form);
    const clientId = machine
      ? machine.username
      : authenticateClient(request.headers.authorization, form, 'revoke').clientId;
    if (!form.token) throw new OAuthError('invalid_request', 'token is required');
    const claims = await tokenClaims(form.token);
    // RFC 7009: unknown tokens and other clients' tokens are answered 200 all the same, and left alone.
    if (claims && typeof claims.jti === 'string' && claims.client_id === clientId && claims.exp) {
      await store.revokeToken(store.pool, claims.jti, new Date(claims.exp * 1000));
    }
    return reply.code(200).header('Cache-Control', 'no-store').send('');
  });

  // --- logout ---

  const endSession = async (input: unknown, reply: FastifyReply) => {
    const params = parseOrUndefined(endSessionParams, input);
    if (!params)
      return sendPage(reply, 400, messagePage('Invalid request', 'The logout request is malformed.'));
    let hint: JWTPayload | undefined;
    if (params.id_token_hint) {
      hint = await signer.verify(params.id_token_hint, ctx.issuer(), true);
      if (!hint)
        return sendPage(reply, 400, messagePage('Invalid request', 'The id_token_hint is not valid.'));
    }
    const hintAudience = hint ? (Array.isArray(hint.aud) ? hint.aud : [hint.aud]) : [];
    if (params.client_id && hint && !hintAudience.includes(params.client_id)) {
      return sendPage(
        reply,
        400,
        messagePage('Invalid request', 'The id_token_hint was not issued to this client.'),
      );
    }
    const clientId = params.client_id ?? (typeof hint?.azp === 'string' ? hint.azp : hintAudience[0]);
    const client = clientId ? ctx.clients.get(clientId) : undefined;
    if (typeof hint?.sid === 'string') await store.deleteSession(store.pool, hint.sid);
    const target = params.post_logout_redirect_uri;
    if (target && client?.postLogoutRedirectUris.includes(target)) {
      return reply.redirect(withParams(target, { state: params.state }), 302);
    }
    return sendPage(reply, 200, messagePage('Signed out', 'You have been signed out.'));
  };
  app.get('/oidc/v1/end_session', async (request, reply) => endSession(request.query, reply));
  app.post('/oidc/v1/end_session', async (request, reply) => endSession(request.body, reply));
}

/** The role claim value Zitadel puts in tokens: role key → { orgId: orgDomain }. */
export function roleClaims(
  ctx: IdpContext,
  roles: string[],
): Record<string, Record<string, Record<string, string>>> {
  const value = Object.fromEntries(roles.map((role) => [role, { [ctx.orgId]: ctx.orgDomain }]));
  return {
    'urn:zitadel:iam:org:project:roles': value,
    [`urn:zitadel:iam:org:project:${ctx.projectId}:roles`]: value,
  };
}

/** Standard OIDC profile claims, shared by the id_token and userinfo. */
export function profileClaims(user: UserRow) {
  return {
    email: user.email,
    email_verified: user.email_verified,
    preferred_username: user.username,
    name: user.display_name,
    given_name: user.given_name,
    family_name: user.family_name,
    ...(user.nick_name ? { nickname: user.nick_name } : {}),
    ...(user.preferred_language ? { locale: user.preferred_language } : {}),
    updated_at: Math.floor(user.changed_at.getTime() / 1000),
  };
}
