import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import {
  bearer,
  createIdentityUser,
  credentials,
  loginOverHttp,
  sessionIdOf,
  setLocalStatus,
  strongPassword,
  uniqueName,
  newRegistration,
} from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { submitLoginPage } from './support/oidc.js';

const CHROME_ON_WINDOWS =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36';

/** The state cookie a login redirect sets: the `name=value` pair to send back, and its attributes. */
function stateCookieOf(res: { headers: Record<string, string | string[] | number | undefined> }): {
  pair: string;
  attributes: string[];
} {
  const header = String(res.headers['set-cookie'] ?? '');
  expect(header).toMatch(/^users_api_login_state=[A-Za-z0-9_-]{43};/);
  const [pair, ...attributes] = header.split(/;\s*/);
  return { pair, attributes };
}

describe('identity flow over HTTP against the embedded identity provider', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;

  beforeAll(async () => {
    t = await startTestApp();
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  it('register → verify email → login → me → sessions → terminate one → logout', async () => {
    const username = uniqueName('reg');
    const email = `${username}@example.test`;
    const password = strongPassword();

    const registered = await t.http({
      method: 'POST',
      url: '/api/users/register',
      payload: { email, username, password, display_name: 'Reg Istered' },
    });
    expect(registered.statusCode).toBe(201);
    expect(registered.json()).toEqual({
      user_id: expect.any(String),
      status: 'pending_verification',
      message: 'Check your email to verify your account',
    });
    const userId = registered.json().user_id as string;

    // Not verified yet: no session, and the answer says why.
    const early = await t.http({ method: 'POST', url: '/api/users/login', payload: { email, password } });
    expectProblem(early, 403, 'forbidden');
    expect(early.json().detail).toMatch(/verify your email/i);

    const duplicate = await t.http({
      method: 'POST',
      url: '/api/users/register',
      payload: { email: email.toUpperCase(), username: `${username}x`, password, display_name: 'Again' },
    });
    expectProblem(duplicate, 409, 'conflict');

    const zitadelId = (await t.app.get(ZitadelClient).listUsers({ offset: 0, limit: 1000 })).users.find(
      (u) => u.email === email,
    )!.userId;
    const wrongCode = await t.http({
      method: 'POST',
      url: '/api/users/verify-email',
      payload: { user_id: userId, code: 'WRONG1' },
    });
    expectProblem(wrongCode, 422, 'validation_error');
    const code = await idp.lastEmailCode(zitadelId);
    expect(code).toBeDefined();
    const verified = await t.http({
      method: 'POST',
      url: '/api/users/verify-email',
      payload: { user_id: userId, code },
    });
    expect(verified.statusCode).toBe(200);
    expect(verified.json()).toMatchObject({ user_id: userId, status: 'active' });

    const first = await loginOverHttp(t, { email, password }, { 'user-agent': CHROME_ON_WINDOWS });
    expect(first).toEqual({
      session_token: expect.any(String),
      token_type: 'Bearer',
      expires_at: expect.any(String),
      user_id: userId,
      redirect_url: '/',
    });
    const second = await loginOverHttp(t, { email, password });

    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(first.session_token) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toEqual({
      user_id: userId,
      username,
      email,
      display_name: 'Reg Istered',
      avatar_url: `/api/users/${userId}/avatar`,
      roles: ['user'],
      created_at: expect.any(String),
      last_login: expect.any(String),
    });

    const listed = await t.http({
      method: 'GET',
      url: `/api/users/${userId}/sessions`,
      headers: bearer(first.session_token),
    });
    expect(listed.statusCode).toBe(200);
    const sessions = listed.json().sessions as { session_id: string; device: string | null }[];
    expect(sessions.map((s) => s.session_id).sort()).toEqual(
      [sessionIdOf(first.session_token), sessionIdOf(second.session_token)].sort(),
    );
    expect(sessions.find((s) => s.session_id === sessionIdOf(first.session_token))).toMatchObject({
      device: 'Chrome on Windows',
      ip: '127.0.0.1',
      bot_id: null,
    });

    const terminated = await t.http({
      method: 'DELETE',
      url: `/api/users/${userId}/sessions/${sessionIdOf(second.session_token)}`,
      headers: bearer(first.session_token),
    });
    expect(terminated.json()).toEqual({
      session_id: sessionIdOf(second.session_token),
      status: 'terminated',
    });
    // The terminated session's token fails on its very next request.
    expectProblem(
      await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(second.session_token) }),
      401,
      'unauthorized',
    );

    const loggedOut = await t.http({
      method: 'POST',
      url: '/api/users/logout',
      headers: bearer(first.session_token),
    });
    expect(loggedOut.json()).toEqual({ status: 'logged_out', redirect_url: '/' });
    expectProblem(
      await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(first.session_token) }),
      401,
      'unauthorized',
    );
  });

  it('OIDC: redirect → login page → callback → session; the state works once; logout offers end-session', async () => {
    const user = await createIdentityUser(t);
    const start = await t.http({ method: 'POST', url: '/api/users/login', payload: { email: user.email } });
    expect(start.statusCode).toBe(200);
    const redirectUrl = new URL(start.json().redirect_url as string);
    expect(redirectUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(redirectUrl.searchParams.get('login_hint')).toBe(user.email);
    expect(redirectUrl.searchParams.get('state')).toBeTruthy();

    const cookie = stateCookieOf(start);
    expect(cookie.attributes).toEqual(
      expect.arrayContaining(['HttpOnly', 'SameSite=Lax', 'Path=/api/users/login/callback', 'Max-Age=600']),
    );

    const callback = await submitLoginPage(redirectUrl.toString(), user.email, user.password);
    expect(callback.pathname).toBe('/api/users/login/callback');
    const completed = await t.http({
      method: 'GET',
      url: `${callback.pathname}${callback.search}`,
      headers: { cookie: cookie.pair },
    });
    expect({ status: completed.statusCode, body: completed.json() }).toMatchObject({ status: 200 });
    // The cookie has done its work: the callback clears it.
    expect(String(completed.headers['set-cookie'])).toMatch(/^users_api_login_state=; Max-Age=0/);
    const session = completed.json<{ session_token: string; user_id: string }>();
    expect(session).toMatchObject({ token_type: 'Bearer', user_id: expect.any(String) });
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(session.session_token) });
    expect(me.json()).toMatchObject({ email: user.email, user_id: session.user_id });

    const replay = await t.http({
      method: 'GET',
      url: `${callback.pathname}${callback.search}`,
      headers: { cookie: cookie.pair },
    });
    expectProblem(replay, 400, 'invalid_request');

    const loggedOut = await t.http({
      method: 'POST',
      url: '/api/users/logout',
      headers: bearer(session.session_token),
    });
    expect(loggedOut.json()).toMatchObject({ status: 'logged_out', redirect_url: '/' });
    expect(
      new URL(loggedOut.json().end_session_url as string).searchParams.get('id_token_hint'),
    ).toBeTruthy();
  });

  it('rejects a callback with an unknown state before talking to the identity provider', async () => {
    const res = await t.http({
      method: 'GET',
      url: '/api/users/login/callback?code=abc&state=never-issued',
      headers: { cookie: 'users_api_login_state=never-issued' },
    });
    expectProblem(res, 400, 'invalid_request');
  });

  it('finishes a browser login only in the browser that started it (state cookie)', async () => {
    const user = await createIdentityUser(t);
    const victim = await t.http({ method: 'POST', url: '/api/users/login', payload: { email: user.email } });
    const attacker = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { email: user.email },
    });
    // A callback carrying a code and state from someone else's login (login CSRF) is refused: without the
    // cookie, or with the cookie of another login.
    const callback = await submitLoginPage(victim.json().redirect_url as string, user.email, user.password);
    const url = `${callback.pathname}${callback.search}`;
    const refused = [
      await t.http({ method: 'GET', url }),
      await t.http({ method: 'GET', url, headers: { cookie: stateCookieOf(attacker).pair } }),
    ];
    for (const res of refused) {
      expectProblem(res, 400, 'invalid_request');
      expect(res.json().detail).toMatch(/not started in this browser/);
    }
    // Refusing did not use the state up: the browser that started the login still finishes it.
    const completed = await t.http({ method: 'GET', url, headers: { cookie: stateCookieOf(victim).pair } });
    expect({ status: completed.statusCode, body: completed.json() }).toMatchObject({ status: 200 });
  });

  it('accepts a Zitadel-issued access token, with roles from its claim', async () => {
    const user = await createIdentityUser(t, { roles: ['manager'] });
    await loginOverHttp(t, user); // creates the local profile
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(8).toString('hex');
    const authorize = new URL('/oauth/v2/authorize', idp.url);
    const redirectUri = new URL(
      (await t.app.get(ZitadelClient).authorizationUrl({ state, nonce: 'n', codeChallenge: 'x' })).toString(),
    ).searchParams.get('redirect_uri')!;
    authorize.search = new URLSearchParams({
      client_id: 'users-api',
      redirect_uri: redirectUri,
      response_type: 'code',
      scope: `openid email urn:zitadel:iam:org:project:id:${idp.projectId}:aud`,
      state,
      nonce: 'n',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    }).toString();
    const callback = await submitLoginPage(authorize.toString(), user.email, user.password);
    const token = await fetch(new URL('/oauth/v2/token', idp.url), {
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
    const { access_token: accessToken } = (await token.json()) as { access_token: string };
    const me = await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(accessToken) });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ email: user.email });
    const tampered = `${accessToken.slice(0, -4)}AAAA`;
    expectProblem(
      await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(tampered) }),
      401,
      'unauthorized',
    );
  });

  it('refuses suspended and deactivated users and creates no session', async () => {
    // The password is right and Zitadel accepts it: the local state may be told.
    const suspended = await createIdentityUser(t);
    const session = await loginOverHttp(t, suspended);
    await setLocalStatus(t, session.user_id, 'suspended');
    const res = await t.http({ method: 'POST', url: '/api/users/login', payload: credentials(suspended) });
    expectProblem(res, 403, 'forbidden');
    expect(res.json().detail).toMatch(/suspended/);

    // Zitadel refuses a deactivated user before it checks the password: answered like a wrong password.
    const deactivated = await createIdentityUser(t);
    await t.app.get(ZitadelClient).deactivateUser(deactivated.zitadelId);
    const refused = await t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: credentials(deactivated),
    });
    expectProblem(refused, 401, 'unauthorized');
    expect(refused.json().detail).toBe('Invalid email or password');
  });

  it('gives remember_me a longer session', async () => {
    const user = await createIdentityUser(t);
    const short = await loginOverHttp(t, user);
    const long = (
      await t.http({
        method: 'POST',
        url: '/api/users/login',
        payload: { ...credentials(user), remember_me: true },
      })
    ).json<{ expires_at: string }>();
    const days = (iso: string) => (Date.parse(iso) - Date.now()) / 86_400_000;
    expect(days(short.expires_at)).toBeLessThan(1);
    expect(days(long.expires_at)).toBeGreaterThan(29);
  });

  it('validates login and registration input', async () => {
    expectProblem(
      await t.http({
        method: 'POST',
        url: '/api/users/login',
        payload: { email: 'not-an-email', password: 'x' },
      }),
      422,
      'validation_error',
    );
    const weak = await t.http({
      method: 'POST',
      url: '/api/users/register',
      payload: {
        email: `${uniqueName()}@example.test`,
        username: uniqueName(),
        password: 'short',
        display_name: 'W',
      },
    });
    expectProblem(weak, 422, 'validation_error');
    expect(weak.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toEqual(['password']);
  });
});

describe('login failures', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ LOGIN_FAILURE_MIN_MS: '300' });
  });
  afterAll(() => t.close());

  it('answers a wrong password and an unknown email alike, in about the same time', async () => {
    const user = await createIdentityUser(t);
    const attempt = async (payload: object) => {
      const started = performance.now();
      const res = await t.http({ method: 'POST', url: '/api/users/login', payload });
      return { res, ms: performance.now() - started };
    };
    const wrong = await attempt({ email: user.email, password: 'Wrong-password-1!' });
    const unknown = await attempt({
      email: `${uniqueName('nobody')}@example.test`,
      password: 'Wrong-password-1!',
    });
    expectProblem(wrong.res, 401, 'unauthorized');
    expectProblem(unknown.res, 401, 'unauthorized');
    expect(wrong.res.json().detail).toBe(unknown.res.json().detail);
    expect(wrong.ms).toBeGreaterThanOrEqual(300);
    expect(unknown.ms).toBeGreaterThanOrEqual(300);
    expect(Math.abs(wrong.ms - unknown.ms)).toBeLessThan(250);
  });
});

describe('registration switched off', () => {
  it('answers 403', async () => {
    const t = await startTestApp({ REGISTRATION_ENABLED: 'false' });
    try {
      const res = await t.http({
        method: 'POST',
        url: '/api/users/register',
        payload: newRegistration('reg', 'N'),
      });
      expectProblem(res, 403, 'forbidden');
    } finally {
      await t.close();
    }
  });
});
