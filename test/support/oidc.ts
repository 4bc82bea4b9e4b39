import { expect } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../../src/zitadel/zitadel.module.js';
import { ZitadelClient } from '../../src/zitadel/zitadel.client.js';
import type { TestApp } from './test-app.js';

/** Fills and submits the identity provider's login page the way a browser would; returns the redirect. */
export async function submitLoginPage(pageUrl: string, loginName: string, password: string): Promise<URL> {
  const page = await fetch(pageUrl);
  expect(page.status).toBe(200);
  const html = await page.text();
  const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  expect(form).not.toBeNull();
  const fields = new URLSearchParams();
  for (const input of form![2].matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    if (!name) continue;
    const type = /type="([^"]*)"/.exec(input[0])?.[1] ?? 'text';
    const value = (/value="([^"]*)"/.exec(input[0])?.[1] ?? '')
      .replace(/&amp;/g, '&')
      .replace(/&quot;/g, '"');
    fields.set(
      name,
      type === 'password' ? password : /login|user|email/i.test(name) && !value ? loginName : value,
    );
  }
  const action = new URL(form![1].replace(/&amp;/g, '&'), pageUrl);
  const submitted = await fetch(action, {
    method: 'POST',
    body: fields,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
  expect(submitted.status).toBe(302);
  return new URL(submitted.headers.get('location')!);
}

/**
 * What a client of Zitadel's own flows holds after an authorization-code login as this user: the ID token
 * and the access token, asking for the project audience and the role claims as this service's login does.
 */
export async function zitadelTokens(
  t: TestApp,
  user: { email: string; password: string },
): Promise<{ idToken: string; accessToken: string }> {
  const idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(8).toString('hex');
  const redirectUri = new URL(
    await t.app.get(ZitadelClient).authorizationUrl({ state, nonce: 'n', codeChallenge: 'x' }),
  ).searchParams.get('redirect_uri')!;
  const authorize = new URL('/oauth/v2/authorize', idp.url);
  authorize.search = new URLSearchParams({
    client_id: 'users-api',
    redirect_uri: redirectUri,
    response_type: 'code',
    scope: `openid email urn:zitadel:iam:org:project:id:${idp.projectId}:aud urn:zitadel:iam:org:projects:roles`,
    state,
    nonce: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  const callback = await submitLoginPage(authorize.toString(), user.email, user.password);
  const reply = await fetch(new URL('/oauth/v2/token', idp.url), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: callback.searchParams.get('code')!,
      redirect_uri: redirectUri,
      client_id: 'users-api',
      code_verifier: verifier,
    }),
  });
  expect(reply.status).toBe(200);
  const tokens = (await reply.json()) as { id_token: string; access_token: string };
  return { idToken: tokens.id_token, accessToken: tokens.access_token };
}
