import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { Code, ConnectError } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { getStorageToken } from '@nestjs/throttler';
import { NewAuthorizationBearerInterceptor } from '@zitadel/client';
import { createUserServiceClient } from '@zitadel/client/v2';
import type { Response } from 'light-my-request';
import { Secret, TOTP } from 'otpauth';
import type { FailoverThrottlerStorage } from '../src/common/rate-limit/failover-throttler.storage.js';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import {
  bearer,
  createIdentityUser,
  credentials,
  loginOverHttp,
  newRegistration,
  sessionIdOf,
  setLocalStatus,
  signedInUser,
  uniqueName,
  type IdentityUser,
} from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** Zitadel's user service of the identity provider, through Zitadel's client, as the service account. */
function zitadelUsers(idp: RunningDevIdentityProvider) {
  return createUserServiceClient(
    createConnectTransport({
      baseUrl: idp.url,
      httpVersion: '1.1',
      interceptors: [NewAuthorizationBearerInterceptor(idp.serviceAccountToken)],
    }),
  );
}

/** The Connect code a call fails with (undefined: it succeeded). */
const failure = (call: Promise<unknown>) =>
  call.then(
    () => undefined,
    (error: unknown) => ConnectError.from(error).code,
  );

/** Enrols a TOTP generator for the user the way Zitadel's API does (register, then verify a code). */
async function enrolTotp(idp: RunningDevIdentityProvider, zitadelId: string): Promise<TOTP> {
  const users = zitadelUsers(idp);
  const registered = await users.registerTOTP({ userId: zitadelId });
  expect(registered.uri).toMatch(/^otpauth:\/\/totp\//);
  const totp = new TOTP({ secret: Secret.fromBase32(registered.secret) });
  // A code from the step before: the login below then uses the current step's code, which is still unused.
  const code = totp.generate({ timestamp: Date.now() - 30_000 });
  await users.verifyTOTPRegistration({ userId: zitadelId, code });
  return totp;
}

/** The form of an HTML page: its action and its fields (hidden ones with their values). */
async function readForm(res: globalThis.Response): Promise<{ action: URL; fields: URLSearchParams }> {
  expect(res.status).toBe(200);
  const html = await res.text();
  const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  expect(form).not.toBeNull();
  const fields = new URLSearchParams();
  for (const input of form![2].matchAll(/<input[^>]*>/gi)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = (/value="([^"]*)"/.exec(input[0])?.[1] ?? '')
      .replace(/&amp;/g, '&')
      .replace(/&quot;/g, '"');
    if (name) fields.set(name, value);
  }
  return { action: new URL(form![1].replace(/&amp;/g, '&'), res.url), fields };
}

function post(url: URL, fields: URLSearchParams) {
  return fetch(url, {
    method: 'POST',
    body: fields,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    redirect: 'manual',
  });
}

function stateCookie(res: Response): string {
  const header = String(res.headers['set-cookie'] ?? '');
  expect(header).toMatch(/^users_api_login_state=[A-Za-z0-9_-]{43};.*HttpOnly/);
  return header.split(';')[0];
}

/** Password, then (when asked) the TOTP code in the hosted login; returns where the browser lands. */
async function hostedLogin(redirectUrl: string, user: IdentityUser, totp?: TOTP): Promise<URL> {
  const login = await readForm(await fetch(redirectUrl));
  login.fields.set('loginName', user.email);
  login.fields.set('password', user.password);
  const afterPassword = await post(login.action, login.fields);
  if (!totp) {
    expect(afterPassword.status).toBe(302);
    return new URL(afterPassword.headers.get('location')!);
  }
  const second = await readForm(afterPassword);
  expect(second.fields.has('otp')).toBe(true);
  second.fields.set('otp', totp.generate());
  const done = await post(second.action, second.fields);
  expect(done.status).toBe(302);
  return new URL(done.headers.get('location')!);
}

describe('login answers', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;
  beforeAll(async () => {
    t = await startTestApp({ LOGIN_REDIRECT_URL: '/app/home' });
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  it("answers the contract's login example with a session token and redirect_url", async () => {
    const user = await createIdentityUser(t);
    const res = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { email: user.email, password: user.password, remember_me: true },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      session_token: expect.any(String),
      token_type: 'Bearer',
      expires_at: expect.any(String),
      user_id: expect.any(String),
      redirect_url: '/app/home',
    });
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('sends an MFA user to the hosted login, where password and TOTP code finish the login', async () => {
    const user = await createIdentityUser(t);
    const totp = await enrolTotp(idp, user.zitadelId);
    const methods = await t.app.get(ZitadelClient).listAuthenticationMethodTypes(user.zitadelId);
    expect(methods.sort()).toEqual([
      'AUTHENTICATION_METHOD_TYPE_PASSWORD',
      'AUTHENTICATION_METHOD_TYPE_TOTP',
    ]);

    const res = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { ...credentials(user), bot_id: 'support-bot' },
    });
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json())).toEqual(['redirect_url']);
    const redirect = new URL(res.json().redirect_url as string);
    expect(redirect.origin).toBe(new URL(idp.url).origin);
    expect(redirect.searchParams.get('login_hint')).toBe(user.email);
    expect(redirect.searchParams.get('code_challenge_method')).toBe('S256');
    const cookie = stateCookie(res);
    expect(cookie.split('=')[1]).toBe(redirect.searchParams.get('state'));

    // The hosted page asks for the second factor after the password; a wrong code is refused there.
    const login = await readForm(await fetch(redirect));
    login.fields.set('loginName', user.email);
    login.fields.set('password', user.password);
    const second = await readForm(await post(login.action, login.fields));
    second.fields.set('otp', '000000');
    const wrong = await post(second.action, second.fields);
    expect(wrong.status).toBe(200);
    expect(await wrong.text()).toMatch(/code is wrong/);

    const landed = await hostedLogin(redirect.toString(), user, totp);
    expect(landed.pathname).toBe('/api/users/login/callback');
    const completed = await t.http({
      method: 'GET',
      url: `${landed.pathname}${landed.search}`,
      headers: { cookie },
    });
    expect({ status: completed.statusCode, body: completed.json() }).toMatchObject({ status: 200 });
    const session = completed.json<{ session_token: string; user_id: string }>();
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(session.session_token) });
    expect(me.json()).toMatchObject({ email: user.email });
    // The bot of the login travelled through the OIDC state to the session.
    const sessions = await t.http({
      method: 'GET',
      url: `/api/users/${session.user_id}/sessions`,
      headers: bearer(session.session_token),
    });
    expect(sessions.json().sessions).toEqual([
      expect.objectContaining({ session_id: sessionIdOf(session.session_token), bot_id: 'support-bot' }),
    ]);
  });

  it('counts wrong TOTP codes on the hosted page towards the lockout, so a code cannot be guessed', async () => {
    const user = await createIdentityUser(t);
    await enrolTotp(idp, user.zitadelId);
    const start = await t.http({ method: 'POST', url: '/api/users/login', payload: credentials(user) });
    const login = await readForm(await fetch(start.json().redirect_url as string));
    login.fields.set('loginName', user.email);
    login.fields.set('password', user.password);
    const second = await readForm(await post(login.action, login.fields));
    let page = '';
    for (let attempt = 1; attempt <= 10; attempt++) {
      second.fields.set('otp', attempt % 2 ? '000000' : '999999');
      page = await (await post(second.action, second.fields)).text();
    }
    expect(page).toMatch(/locked/);
    expect((await t.app.get(ZitadelClient).getUser(user.zitadelId))?.state).toBe('USER_STATE_LOCKED');
  });

  it('a wrong password of an MFA user is a wrong password: the factor is not disclosed', async () => {
    const user = await createIdentityUser(t);
    await enrolTotp(idp, user.zitadelId);
    const res = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { email: user.email, password: 'Wrong-Passw0rd!' },
    });
    expectProblem(res, 401, 'unauthorized');
  });

  it('follows the login policy: forced MFA or no password logins send every password login to the hosted login', async () => {
    const user = await createIdentityUser(t);
    for (const policy of [{ forceMfa: true }, { allowUsernamePassword: false }]) {
      idp.setLoginSettings(policy);
      try {
        const res = await t.http({ method: 'POST', url: '/api/users/login', payload: credentials(user) });
        expect({ policy, status: res.statusCode, keys: Object.keys(res.json()) }).toEqual({
          policy,
          status: 200,
          keys: ['redirect_url'],
        });
        stateCookie(res);
      } finally {
        idp.setLoginSettings({ forceMfa: false, allowUsernamePassword: true });
      }
    }
    expect((await loginOverHttp(t, user)).session_token).toEqual(expect.any(String));
  });
});

describe('sessions that belong to bots', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  const login = (user: IdentityUser, botId?: string) =>
    t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { ...credentials(user), ...(botId === undefined ? {} : { bot_id: botId }) },
    });

  it('records bot_id, lists and filters by it, and ends only that bot’s sessions', async () => {
    const user = await createIdentityUser(t);
    const support = (await login(user, 'support-bot')).json<{ session_token: string; user_id: string }>();
    const sales = (await login(user, 'sales_bot-2')).json<{ session_token: string }>();
    const plain = (await login(user)).json<{ session_token: string }>();
    const userId = support.user_id;
    const auth = bearer(plain.session_token);

    const all = await t.http({ method: 'GET', url: `/api/users/${userId}/sessions`, headers: auth });
    const byId = Object.fromEntries(
      (all.json().sessions as { session_id: string; bot_id: string | null }[]).map((s) => [
        s.session_id,
        s.bot_id,
      ]),
    );
    expect(byId).toEqual({
      [sessionIdOf(support.session_token)]: 'support-bot',
      [sessionIdOf(sales.session_token)]: 'sales_bot-2',
      [sessionIdOf(plain.session_token)]: null,
    });

    const filtered = await t.http({
      method: 'GET',
      url: `/api/users/${userId}/sessions?bot_id=support-bot`,
      headers: auth,
    });
    expect(filtered.json().sessions).toEqual([
      expect.objectContaining({ session_id: sessionIdOf(support.session_token), bot_id: 'support-bot' }),
    ]);
    const none = await t.http({
      method: 'GET',
      url: `/api/users/${userId}/sessions?bot_id=other-bot`,
      headers: auth,
    });
    expect(none.json()).toEqual({ sessions: [] });

    const ended = await t.http({
      method: 'DELETE',
      url: `/api/users/${userId}/sessions?bot_id=support-bot`,
      headers: auth,
    });
    expect(ended.json()).toEqual({ terminated_count: 1, status: 'all_sessions_terminated' });
    const me = (token: string) => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });
    expectProblem(await me(support.session_token), 401, 'unauthorized');
    expect((await me(sales.session_token)).statusCode).toBe(200);
    expect((await me(plain.session_token)).statusCode).toBe(200);
  });

  it('refuses a bot_id that is not a sane identifier, on login and in the query', async () => {
    const user = await createIdentityUser(t);
    const self = await loginOverHttp(t, user);
    for (const botId of ['', 'Support-Bot', '-bot', 'bot id', 'a'.repeat(65), 'bot/../x', 'bøt']) {
      expectProblem(await login(user, botId), 422, 'validation_error');
      for (const method of ['GET', 'DELETE'] as const) {
        const res = await t.http({
          method,
          url: `/api/users/${self.user_id}/sessions?bot_id=${encodeURIComponent(botId)}`,
          headers: bearer(self.session_token),
        });
        expect({ botId, method, status: res.statusCode }).toEqual({ botId, method, status: 422 });
      }
    }
    const wrongType = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { ...credentials(user), bot_id: 42 },
    });
    expectProblem(wrongType, 422, 'validation_error');
    // Nothing was ended by the refused deletes.
    expect(
      (await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(self.session_token) })).statusCode,
    ).toBe(200);
  });

  it("a bot filter does not open another user's sessions", async () => {
    const alice = await signedInUser(t);
    const bob = await signedInUser(t);
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await t.http({
        method,
        url: `/api/users/${alice.userId}/sessions?bot_id=support-bot`,
        headers: bearer(bob.token),
      });
      expectProblem(res, 403, 'forbidden');
      const anonymous = await t.http({
        method,
        url: `/api/users/${alice.userId}/sessions?bot_id=support-bot`,
      });
      expectProblem(anonymous, 401, 'unauthorized');
    }
  });
});

const from = (ip: string) => ({ 'x-forwarded-for': ip });

describe.each<[string, Record<string, string | undefined>]>([
  ['in memory', {}],
  [
    'in Redis',
    {
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: `users-api-test-${process.pid}:`,
    },
  ],
])('failed logins per account (counted %s)', (_where, env) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      RATE_LIMIT_LOGIN_FAILURES: '3/15m',
      TRUST_PROXY: 'loopback',
      LOGIN_FAILURE_MIN_MS: '0',
      ...env,
    });
  });
  afterAll(() => t.close());

  const login = (ip: string, body: object) =>
    t.http({ method: 'POST', url: '/api/users/login', payload: body, headers: from(ip) });

  it('stops one client before it can lock the account; the real user elsewhere still logs in', async () => {
    const user = await createIdentityUser(t);
    const attacker = '203.0.113.7';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const res = await login(attacker, { email: user.email, password: 'Wrong-Passw0rd!' });
      expect({ attempt, status: res.statusCode }).toEqual({ attempt, status: 401 });
    }
    // The limit is reached: refused before Zitadel sees another password, even the right one, with the
    // login name written differently.
    for (const body of [
      { email: user.email, password: 'Wrong-Passw0rd!' },
      { email: user.email.toUpperCase(), password: user.password },
    ]) {
      const res = await login(attacker, body);
      expectProblem(res, 429, 'rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(900);
    }
    // Zitadel counted only the three failures: the account is not locked, and the real user, from
    // another address, logs in.
    const real = await login('198.51.100.20', credentials(user));
    expect(real.statusCode).toBe(200);
    expect((await t.app.get(ZitadelClient).getUser(user.zitadelId))?.state).toBe('USER_STATE_ACTIVE');
    if (env.REDIS_URL) expect(t.app.get<FailoverThrottlerStorage>(getStorageToken()).lastStore).toBe('redis');
    // Other accounts are not affected from the attacker's address either.
    const other = await createIdentityUser(t);
    expect((await login(attacker, credentials(other))).statusCode).toBe(200);
  });

  it('counts unknown emails the same way (the 429 says nothing about the account)', async () => {
    const email = `${uniqueName('nobody')}@example.test`;
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect((await login('203.0.113.8', { email, password: 'Wrong-Passw0rd!' })).statusCode).toBe(401);
    }
    expectProblem(await login('203.0.113.8', { email, password: 'Wrong-Passw0rd!' }), 429, 'rate_limited');
  });

  it('never counts successful logins', async () => {
    const user = await createIdentityUser(t);
    for (let attempt = 1; attempt <= 5; attempt++) {
      const res = await login('203.0.113.9', credentials(user));
      expect({ attempt, status: res.statusCode }).toEqual({ attempt, status: 200 });
    }
  });
});

describe('failed logins disclose nothing', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ LOGIN_FAILURE_MIN_MS: '300' });
  });
  afterAll(() => t.close());

  it('answers locked, deactivated, deleted and unknown accounts like a wrong password, in the same time', async () => {
    const zitadel = t.app.get(ZitadelClient);
    const admin = await signedInUser(t, { roles: ['admin'] });
    const locked = await createIdentityUser(t);
    await zitadel.lockUser(locked.zitadelId);
    const deactivated = await createIdentityUser(t);
    await zitadel.deactivateUser(deactivated.zitadelId);
    const deleted = await createIdentityUser(t);
    const deletedId = (await loginOverHttp(t, deleted)).user_id;
    const removal = await t.http({
      method: 'DELETE',
      url: `/api/users/${deletedId}`,
      headers: bearer(admin.token),
    });
    expect(removal.statusCode).toBe(200);
    const suspended = await createIdentityUser(t);
    const suspendedId = (await loginOverHttp(t, suspended)).user_id;
    const suspension = await t.http({
      method: 'POST',
      url: `/api/users/${suspendedId}/suspend`,
      headers: bearer(admin.token),
      payload: { reason: 'test' },
    });
    expect(suspension.statusCode).toBe(200);
    const wrong = await createIdentityUser(t);

    const cases = {
      'wrong password': { email: wrong.email, password: 'Wrong-Passw0rd!' },
      unknown: { email: `${uniqueName('nobody')}@example.test`, password: 'Wrong-Passw0rd!' },
      // Zitadel refuses these before it checks the password, so even the right one says nothing more.
      locked: credentials(locked),
      deactivated: credentials(deactivated),
      deleted: credentials(deleted),
      suspended: credentials(suspended),
      'suspended, wrong password': { email: suspended.email, password: 'Wrong-Passw0rd!' },
    };
    for (const [name, payload] of Object.entries(cases)) {
      const started = performance.now();
      const res = await t.http({ method: 'POST', url: '/api/users/login', payload });
      const ms = performance.now() - started;
      expect({ name, status: res.statusCode }).toEqual({ name, status: 401 });
      expectProblem(res, 401, 'unauthorized');
      expect({ name, detail: res.json().detail }).toEqual({ name, detail: 'Invalid email or password' });
      expect({ name, atLeastTheFloor: ms >= 295 }).toEqual({ name, atLeastTheFloor: true });
    }
  });
});

describe('verify-email discloses nothing', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;
  beforeAll(async () => {
    t = await startTestApp();
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  const verify = (userId: string, code: string) =>
    t.http({ method: 'POST', url: '/api/users/verify-email', payload: { user_id: userId, code } });

  async function register(): Promise<{ userId: string; zitadelId: string }> {
    const body = newRegistration('verify', 'Veri Fy');
    const res = await t.http({ method: 'POST', url: '/api/users/register', payload: body });
    expect(res.statusCode).toBe(201);
    const zitadelId = (await t.app.get(ZitadelClient).listUsers({ offset: 0, limit: 1000 })).users.find(
      (u) => u.email === body.email,
    )!.userId;
    return { userId: res.json().user_id as string, zitadelId };
  }

  it('answers every wrong (user, code) pair the same, whatever the user', async () => {
    const pending = await register();
    const active = await signedInUser(t);
    const suspended = await signedInUser(t);
    await setLocalStatus(t, suspended.userId, 'suspended');
    const deleted = await signedInUser(t);
    await setLocalStatus(t, deleted.userId, 'deleted');

    const answers = [
      await verify(pending.userId, 'WRONG1'),
      await verify(randomUUID(), 'WRONG1'),
      await verify(active.userId, 'WRONG1'),
      await verify(suspended.userId, 'WRONG1'),
      await verify(deleted.userId, 'WRONG1'),
    ];
    for (const res of answers) expectProblem(res, 422, 'validation_error');
    const bodies = answers.map((res) => {
      const { request_id: _id, ...rest } = res.json<Record<string, unknown>>();
      return rest;
    });
    for (const body of bodies) expect(body).toEqual(bodies[0]);

    // The right code still works.
    const code = await idp.lastEmailCode(pending.zitadelId);
    const ok = await verify(pending.userId, code!);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ user_id: pending.userId, status: 'active' });
  });

  it('kills a code after 5 wrong attempts: the right one no longer works', async () => {
    const pending = await register();
    const code = await idp.lastEmailCode(pending.zitadelId);
    for (let attempt = 1; attempt <= 5; attempt++) {
      expectProblem(await verify(pending.userId, `WRONG${attempt}`), 422, 'validation_error');
    }
    expectProblem(await verify(pending.userId, code!), 422, 'validation_error');
  });

  it('dev-idp counts wrong codes the way it stores them, as users-api does', async () => {
    const pending = await register();
    const code = await idp.lastEmailCode(pending.zitadelId);
    const users = zitadelUsers(idp);
    const verifyEmail = (verificationCode: string) =>
      failure(users.verifyEmail({ userId: pending.zitadelId, verificationCode }));
    for (let attempt = 1; attempt <= 4; attempt++) {
      expect(await verifyEmail('WRONG1')).toBe(Code.InvalidArgument);
    }
    expect(await idp.lastEmailCode(pending.zitadelId)).toBe(code);
    await verifyEmail('WRONG5');
    expect(await idp.lastEmailCode(pending.zitadelId)).toBeUndefined();
    expect(await verifyEmail(code!)).toBe(Code.InvalidArgument);
    // A new code (resend) starts a fresh count.
    const resent = await users.resendEmailCode({
      userId: pending.zitadelId,
      verification: { case: 'returnCode', value: {} },
    });
    expect(await verifyEmail(resent.verificationCode!)).toBeUndefined();
  });
});
