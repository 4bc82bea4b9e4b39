import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Response } from 'light-my-request';
import { expectProblem } from './support/problem.js';
import { RateLimitTestModule } from './support/rate-limit-routes.js';
import {
  bearer,
  createIdentityUser,
  credentials,
  sessionIdOf,
  uniqueName,
  type SignedInUser,
  newRegistration,
} from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** The contract's table, as configured in production by default. */
const SEED_LIMITS = {
  RATE_LIMIT_LOGIN: '10/1m',
  RATE_LIMIT_REGISTER: '5/1h',
  RATE_LIMIT_USER_LIST: '60/1m',
  RATE_LIMIT_USER_UPDATE: '30/1m',
};

let ipCounter = 0;
/** A fresh client address per test, so tests never share a budget. */
const nextIp = () => `198.51.100.${++ipCounter}`;
const from = (ip: string) => ({ 'x-forwarded-for': ip });

function expectRateLimitHeaders(
  res: Response,
  policy: string,
  quota: number,
  window: number,
  remaining: number,
) {
  expect(res.headers['ratelimit-policy']).toBe(`"${policy}";q=${quota};w=${window}`);
  const match = new RegExp(`^"${policy}";r=(\\d+);t=(\\d+)$`).exec(String(res.headers.ratelimit));
  expect(match).not.toBeNull();
  expect(Number(match![1])).toBe(remaining);
  expect(Number(match![2])).toBeGreaterThanOrEqual(0);
  expect(Number(match![2])).toBeLessThanOrEqual(window);
}

function expectRateLimited(res: Response, policy: string, quota: number, window: number) {
  expectProblem(res, 429, 'rate_limited');
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(window);
  expectRateLimitHeaders(res, policy, quota, window, 0);
}

describe('rate limits (the seed table)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(
      {
        ...SEED_LIMITS,
        RATE_LIMIT_DEFAULT: '5/1m',
        // inject() connects from 127.0.0.1: trust it as the proxy, so X-Forwarded-For picks the client.
        TRUST_PROXY: 'loopback',
        LOGIN_FAILURE_MIN_MS: '0',
      },
      [RateLimitTestModule],
    );
  });
  afterAll(() => t.close());

  const login = (ip: string, body: { email: string; password: string }) =>
    t.http({ method: 'POST', url: '/api/users/login', payload: body, headers: from(ip) });

  it('login: 10 a minute per IP; the 11th is refused, wrong passwords count, other IPs are not affected', async () => {
    const user = await createIdentityUser(t);
    const ip = nextIp();
    for (let attempt = 1; attempt <= 10; attempt++) {
      // Wrong passwords, and unknown addresses (the identity provider would lock the user after 10 wrong ones).
      const email = attempt % 2 ? user.email : `${uniqueName('nobody')}@example.test`;
      const res = await login(ip, { email, password: 'Wrong-Passw0rd!' });
      expect({ attempt, status: res.statusCode }).toEqual({ attempt, status: 401 });
      expectRateLimitHeaders(res, 'login', 10, 60, 10 - attempt);
    }
    // The 11th is refused even with the right password.
    const eleventh = await login(ip, credentials(user));
    expectRateLimited(eleventh, 'login', 10, 60);
    expect(eleventh.json().detail).toMatch(/at most 10 per minute/);

    const elsewhere = await login(nextIp(), credentials(user));
    expect(elsewhere.statusCode).toBe(200);
    expectRateLimitHeaders(elsewhere, 'login', 10, 60, 9);
  });

  it('register: 5 an hour per IP; the 6th is refused, other IPs are not affected', async () => {
    const register = (ip: string) =>
      t.http({
        method: 'POST',
        url: '/api/users/register',
        payload: newRegistration('rl', 'R L'),
        headers: from(ip),
      });
    const ip = nextIp();
    for (let attempt = 1; attempt <= 5; attempt++) {
      const res = await register(ip);
      expect({ attempt, status: res.statusCode }).toEqual({ attempt, status: 201 });
      expectRateLimitHeaders(res, 'register', 5, 3600, 5 - attempt);
    }
    expectRateLimited(await register(ip), 'register', 5, 3600);
    expect((await register(nextIp())).statusCode).toBe(201);
  });

  describe('per user', () => {
    let alice: SignedInUser;
    let bob: SignedInUser;
    beforeAll(async () => {
      // Signed in from their own addresses: the login budget of this file's other tests stays untouched.
      alice = await signedInUserFrom(nextIp());
      bob = await signedInUserFrom(nextIp());
    });
    async function signedInUserFrom(ip: string): Promise<SignedInUser> {
      const identity = await createIdentityUser(t);
      const res = await login(ip, credentials(identity));
      expect(res.statusCode).toBe(200);
      const { user_id, session_token } = res.json();
      return { ...identity, userId: user_id, token: session_token, sessionId: sessionIdOf(session_token) };
    }

    it('user list: 60 a minute per user, whatever the IP; the 61st is refused, other users are not affected', async () => {
      const list = (user: SignedInUser, ip: string) =>
        t.http({
          method: 'GET',
          url: '/rate-limit-test/users',
          headers: { ...bearer(user.token), ...from(ip) },
        });
      for (let request = 1; request <= 60; request++) {
        // A new address each time: the budget follows the user, not the connection.
        const res = await list(alice, nextIp());
        expect({ request, status: res.statusCode }).toEqual({ request, status: 200 });
        if (request === 60) expectRateLimitHeaders(res, 'user-list', 60, 60, 0);
      }
      expectRateLimited(await list(alice, nextIp()), 'user-list', 60, 60);
      const other = await list(bob, nextIp());
      expect(other.statusCode).toBe(200);
      expectRateLimitHeaders(other, 'user-list', 60, 60, 59);
    });

    it('user update: 30 a minute per user, one budget for the profile and the settings; the 31st is refused', async () => {
      const put = (user: SignedInUser, path: string) =>
        t.http({
          method: 'PUT',
          url: `/rate-limit-test/users/${user.userId}${path}`,
          headers: bearer(user.token),
        });
      for (let request = 1; request <= 30; request++) {
        const res = await put(alice, request % 2 ? '' : '/settings');
        expect({ request, status: res.statusCode }).toEqual({ request, status: 200 });
        expectRateLimitHeaders(res, 'user-update', 30, 60, 30 - request);
      }
      expectRateLimited(await put(alice, '/settings'), 'user-update', 30, 60);
      expectRateLimited(await put(alice, ''), 'user-update', 30, 60);
      expect((await put(bob, '')).statusCode).toBe(200);
    });

    it('other authenticated routes: the default limit per user and route', async () => {
      const call = (user: SignedInUser) =>
        t.http({
          method: 'GET',
          url: '/rate-limit-test/authenticated',
          headers: { ...bearer(user.token), ...from(nextIp()) },
        });
      for (let request = 1; request <= 5; request++) {
        const res = await call(alice);
        expect({ request, status: res.statusCode }).toEqual({ request, status: 200 });
        expectRateLimitHeaders(res, 'default', 5, 60, 5 - request);
      }
      expectRateLimited(await call(alice), 'default', 5, 60);
      expect((await call(bob)).statusCode).toBe(200);
      // Another route has its own default budget.
      expect(
        (await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(alice.token) })).statusCode,
      ).toBe(200);
    });
  });

  it('other public routes: the default limit per IP', async () => {
    const ip = nextIp();
    const call = (address: string) =>
      t.http({ method: 'GET', url: '/rate-limit-test/public', headers: from(address) });
    for (let request = 1; request <= 5; request++) expect((await call(ip)).statusCode).toBe(200);
    expectRateLimited(await call(ip), 'default', 5, 60);
    expect((await call(nextIp())).statusCode).toBe(200);
  });

  it('never limits health probes or metrics scrapes', async () => {
    for (let request = 1; request <= 12; request++) {
      for (const url of ['/health/live', '/health/ready', '/metrics']) {
        const res = await t.http({ method: 'GET', url });
        expect({ url, request, status: res.statusCode }).toEqual({ url, request, status: 200 });
        expect(res.headers['ratelimit-policy']).toBeUndefined();
      }
    }
  });
});

describe('client address without a trusted proxy', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ RATE_LIMIT_LOGIN: '2/1m', LOGIN_FAILURE_MIN_MS: '0' });
  });
  afterAll(() => t.close());

  it('ignores X-Forwarded-For (a client could otherwise pick a fresh address per attempt)', async () => {
    const attempt = (forwardedFor: string, remoteAddress = '203.0.113.7') =>
      t.http({
        method: 'POST',
        url: '/api/users/login',
        payload: { email: 'nobody@example.test', password: 'Wrong-Passw0rd!' },
        headers: { 'x-forwarded-for': forwardedFor },
        remoteAddress,
      });
    expect((await attempt('192.0.2.1')).statusCode).toBe(401);
    expect((await attempt('192.0.2.2')).statusCode).toBe(401);
    expectRateLimited(await attempt('192.0.2.3'), 'login', 2, 60);
    // The socket address is what counts.
    expect((await attempt('192.0.2.3', '203.0.113.8')).statusCode).toBe(401);
  });
});
