import { createHash, randomBytes } from 'node:crypto';
import { type DescMethodUnary, type JsonObject, fromJson, toJson } from '@bufbuild/protobuf';
import { type Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { expect } from '@jest/globals';
import { unescape } from 'html-escaper';
import { createUserServiceClient } from '@zitadel/client/v2';
import { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import { CredentialsCheckErrorSchema, ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { OrganizationService } from '@zitadel/proto/zitadel/org/v2/org_service_pb.js';
import { SessionService } from '@zitadel/proto/zitadel/session/v2/session_service_pb.js';
import { SettingsService } from '@zitadel/proto/zitadel/settings/v2/settings_service_pb.js';
import { UserService } from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import {
  type DevIdentityProvider,
  type DevIdentityProviderOptions,
  startDevIdentityProvider,
} from './index.js';

/**
 * Helpers for the dev-idp specs (not a spec itself). Several spec files run at once against the same
 * identity-provider test database and therefore the same dev_idp schema, so every user a test makes gets a unique email.
 */

export const STRONG_PASSWORD = 'Correct-Horse-9';
export const REDIRECT_URI = 'http://127.0.0.1:3999/auth/callback';
export const POST_LOGOUT_URI = 'http://127.0.0.1:3999/signed-out';
export const CONFIDENTIAL_SECRET = 'backend-secret-value';

/** The provider's own test database, as in the service it never shares the service's database. */
export function testDatabaseUrl(): string {
  const url = process.env.TEST_IDP_DATABASE_URL;
  if (!url) throw new Error('TEST_IDP_DATABASE_URL is not set: run the specs through jest (global setup)');
  return url;
}

export function uniqueEmail(label: string): string {
  return `${label}-${Date.now()}-${randomBytes(4).toString('hex')}@example.test`;
}

export interface TestProvider {
  idp: DevIdentityProvider;
  /** Codes the provider "emailed", by user id. */
  sentCodes: Map<string, string>;
  logs: string[];
}

export async function startTestProvider(
  overrides: Partial<DevIdentityProviderOptions> = {},
): Promise<TestProvider> {
  const sentCodes = new Map<string, string>();
  const logs: string[] = [];
  const idp = await startDevIdentityProvider({
    databaseUrl: testDatabaseUrl(),
    clients: [
      { clientId: 'web-app', redirectUris: [REDIRECT_URI], postLogoutRedirectUris: [POST_LOGOUT_URI] },
      { clientId: 'backend', clientSecret: CONFIDENTIAL_SECRET, redirectUris: [REDIRECT_URI] },
    ],
    emailCodeSink: (userId, _email, code) => sentCodes.set(userId, code),
    logger: { log: (msg) => logs.push(msg), warn: (msg) => logs.push(`WARN ${msg}`) },
    ...overrides,
  });
  return { idp, sentCodes, logs };
}

/** The Zitadel services dev-idp implements, by method name (the names are unique across them). */
const SERVICES = [UserService, SessionService, SettingsService, OrganizationService, AuthorizationService];
type MethodOf<S> = S extends { method: infer M } ? keyof M : never; // distributes over the union
type Method = MethodOf<(typeof SERVICES)[number]>;

export interface RpcResult {
  /** Connect's code; 0 for success. */
  code: Code | 0;
  /** The answer as protojson (implicit fields included, as Zitadel's gateway writes them). */
  body: Record<string, unknown>;
  /** Zitadel's error detail (ErrorDetail, or CredentialsCheckError for a wrong password), and the text. */
  error?: { id: string; message: string; failedAttempts?: number; rawMessage: string };
}

/** A transport to dev-idp's Connect API with the service account's token (null: none). */
export function transportOf(idp: DevIdentityProvider, token: string | null = idp.serviceAccountToken) {
  const bearer: Interceptor = (next) => (request) => {
    if (token !== null) request.header.set('authorization', `Bearer ${token}`);
    return next(request);
  };
  return createConnectTransport({ baseUrl: idp.url, httpVersion: '1.1', interceptors: [bearer] });
}

/**
 * Calls one of Zitadel's RPCs with a request in protojson (what Zitadel's docs show), over the Connect
 * protocol; the answer comes back as protojson, an error as its code and Zitadel's detail.
 */
export function apiClient(idp: DevIdentityProvider, token: string | null = idp.serviceAccountToken) {
  const transport = transportOf(idp, token);
  return async (name: Method, json: object = {}): Promise<RpcResult> => {
    const method = SERVICES.map((s) => (s.method as Record<string, DescMethodUnary>)[name]).find(Boolean)!;
    try {
      const input = fromJson(method.input, json as JsonObject);
      const { message } = await transport.unary(method, undefined, undefined, undefined, input);
      return { code: 0, body: toJson(method.output, message, { alwaysEmitImplicit: true }) as JsonObject };
    } catch (thrown) {
      const error = ConnectError.from(thrown);
      const [detail] = [
        ...error.findDetails(ErrorDetailSchema),
        ...error.findDetails(CredentialsCheckErrorSchema),
      ];
      return {
        code: error.code,
        body: {},
        error: detail && { ...detail, rawMessage: error.rawMessage },
      };
    }
  };
}

/** Asserts a Zitadel error: the code, a detail whose id (if given) matches, and the text "<message> (<id>)". */
export function expectZitadelError(result: RpcResult, code: Code, id?: string): void {
  expect({ code: result.code, id: result.error?.id }).toEqual({ code, id: id ?? expect.any(String) });
  expect(result.error?.rawMessage).toBe(`${result.error?.message} (${result.error?.id})`);
}

/** A raw Connect JSON request (for bodies no typed client would send): the HTTP status and Connect's code. */
export async function rawConnect(idp: DevIdentityProvider, path: string, body: string) {
  const response = await fetch(`${idp.url}/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${idp.serviceAccountToken}`, 'content-type': 'application/json' },
    body,
  });
  const json = (await response.json()) as { code?: string };
  return { status: response.status, code: json.code };
}

export async function createUser(
  idp: DevIdentityProvider,
  options: { email?: string; password?: string | null; verified?: boolean; username?: string } = {},
): Promise<{ userId: string; email: string; username: string; password: string }> {
  const email = options.email ?? uniqueEmail('user');
  const password = options.password === undefined ? STRONG_PASSWORD : options.password;
  const { userId } = await createUserServiceClient(transportOf(idp)).addHumanUser({
    username: options.username,
    organization: { org: { case: 'orgId', value: idp.orgId } },
    profile: { givenName: 'Test', familyName: 'User' },
    email: {
      email,
      verification: options.verified ? { case: 'isVerified', value: true } : { case: undefined },
    },
    passwordType:
      password === null
        ? { case: undefined }
        : { case: 'password', value: { password, changeRequired: false } },
  });
  return { userId, email, username: options.username ?? email, password: password ?? '' };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** The hidden inputs of the login form, as a browser would submit them. */
export function hiddenFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g))
    fields[unescape(match[1] ?? '')] = unescape(match[2] ?? '');
  return fields;
}

export function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    redirect: 'manual',
  };
}

/** Runs the browser part of the code flow: authorize page, then the login form; returns the redirect. */
export async function signIn(
  idp: DevIdentityProvider,
  params: { clientId?: string; loginName: string; password: string; nonce?: string; state?: string },
): Promise<{ location: URL; verifier: string; status: number; html?: string }> {
  const { verifier, challenge } = pkce();
  const query = new URLSearchParams({
    client_id: params.clientId ?? 'web-app',
    redirect_uri: REDIRECT_URI,
    response_type: 'code',
    scope: 'openid profile email',
    state: params.state ?? 'state-123',
    nonce: params.nonce ?? 'nonce-456',
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });
  const page = await fetch(`${idp.url}/oauth/v2/authorize?${query.toString()}`);
  const html = await page.text();
  if (page.status !== 200) throw new Error(`authorize page failed: ${page.status}`);
  const response = await fetch(
    `${idp.url}/ui/login`,
    form({ ...hiddenFields(html), loginName: params.loginName, password: params.password }),
  );
  const location = response.headers.get('location');
  if (!location)
    return {
      location: new URL('about:blank'),
      verifier,
      status: response.status,
      html: await response.text(),
    };
  return { location: new URL(location), verifier, status: response.status };
}

export async function exchangeCode(
  idp: DevIdentityProvider,
  fields: Record<string, string>,
  basic?: { id: string; secret: string },
): Promise<{ status: number; body: Record<string, unknown> }> {
  const init = form({ grant_type: 'authorization_code', redirect_uri: REDIRECT_URI, ...fields });
  if (basic) {
    const credentials = Buffer.from(`${basic.id}:${basic.secret}`).toString('base64');
    init.headers = { ...(init.headers as Record<string, string>), authorization: `Basic ${credentials}` };
  }
  const response = await fetch(`${idp.url}/oauth/v2/token`, init);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
