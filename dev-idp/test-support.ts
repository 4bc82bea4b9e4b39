import { createHash, randomBytes } from 'node:crypto';
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

export interface JsonResponse {
  status: number;
  headers: Headers;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: Record<string, unknown> & { [key: string]: unknown };
}

/** A client for Zitadel's JSON APIs, authenticated with the provider's service account token. */
export function apiClient(idp: DevIdentityProvider, token: string | null = idp.serviceAccountToken) {
  return async (method: string, path: string, body?: unknown): Promise<JsonResponse> => {
    const headers: Record<string, string> = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${idp.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = { text };
    }
    return { status: response.status, headers: response.headers, body: parsed as JsonResponse['body'] };
  };
}

export async function createUser(
  idp: DevIdentityProvider,
  options: { email?: string; password?: string | null; verified?: boolean; username?: string } = {},
): Promise<{ userId: string; email: string; username: string; password: string }> {
  const email = options.email ?? uniqueEmail('user');
  const password = options.password === undefined ? STRONG_PASSWORD : options.password;
  const response = await apiClient(idp)('POST', '/v2/users/human', {
    username: options.username,
    organization: { orgId: idp.orgId },
    profile: { givenName: 'Test', familyName: 'User' },
    email: { email, ...(options.verified ? { isVerified: true } : {}) },
    ...(password === null ? {} : { password: { password, changeRequired: false } }),
  });
  if (response.status !== 201)
    throw new Error(`createUser failed: ${response.status} ${JSON.stringify(response.body)}`);
  return {
    userId: String(response.body.userId),
    email,
    username: options.username ?? email,
    password: password ?? '',
  };
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

/** The hidden inputs of the login form, as a browser would submit them. */
export function hiddenFields(html: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const match of html.matchAll(/<input type="hidden" name="([^"]*)" value="([^"]*)">/g)) {
    const unescape = (s: string) =>
      s.replace(/&(amp|lt|gt|quot|#39);/g, (_m, name: string) => ENTITIES[name] ?? '');
    fields[unescape(match[1] ?? '')] = unescape(match[2] ?? '');
  }
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
