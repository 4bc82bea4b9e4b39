import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { ThrottlerStorage } from '@nestjs/throttler';
import type { FailoverThrottlerStorage } from '../src/common/rate-limit/failover-throttler.storage.js';
import { expectProblem } from './support/problem.js';
import { bearer, createIdentityUser, credentials, sessionIdOf, uniqueName } from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * A Redis server named by TEST_REDIS_URL (.ci/run starts one); each run counts under its own key prefix.
 * Without it these tests are skipped, and say so.
 */
const REDIS_URL = process.env.TEST_REDIS_URL;
if (!REDIS_URL) {
  console.warn(
    'multi-instance.e2e-spec: TEST_REDIS_URL is not set; the tests of several instances sharing Redis are skipped',
  );
}

(REDIS_URL ? describe : describe.skip)('several instances on one PostgreSQL and one Redis', () => {
  const keyPrefix = `users-api-test:${uniqueName('multi')}:`;
  let a: TestApp;
  let b: TestApp;
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL!, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      throw new Error(`These tests need Redis at ${REDIS_URL} (set TEST_REDIS_URL for another)`, {
        cause: error,
      });
    }
    const env = {
      REDIS_URL,
      REDIS_KEY_PREFIX: keyPrefix,
      RATE_LIMIT_LOGIN: '10/1m',
      TRUST_PROXY: 'loopback',
      LOGIN_FAILURE_MIN_MS: '0',
    };
    // Each instance runs its own embedded identity provider; both keep its state in the shared database.
    a = await startTestApp(env);
    b = await startTestApp(env);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    if (redis?.status === 'ready') {
      const keys = await redis.keys(`${keyPrefix}*`);
      if (keys.length) await redis.del(...keys);
    }
    redis?.disconnect();
  });

  it('counts logins across instances: the 11th from one IP is refused, whichever instance gets it', async () => {
    const user = await createIdentityUser(a);
    const ip = '192.0.2.61';
    const login = (instance: TestApp, body: { email: string; password: string }) =>
      instance.http({
        method: 'POST',
        url: '/api/users/login',
        payload: body,
        headers: { 'x-forwarded-for': ip },
      });
    for (let attempt = 1; attempt <= 10; attempt++) {
      const email = attempt % 2 ? user.email : `${uniqueName('nobody')}@example.test`;
      const res = await login(attempt % 2 ? a : b, { email, password: 'Wrong-Passw0rd!' });
      expect({ attempt, status: res.statusCode }).toEqual({ attempt, status: 401 });
      expect(res.headers.ratelimit).toMatch(new RegExp(`^"login";r=${10 - attempt};t=\\d+$`));
    }
    for (const instance of [a, b]) {
      const res = await login(instance, credentials(user));
      expectProblem(res, 429, 'rate_limited');
      expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
    }
    for (const instance of [a, b]) {
      expect(instance.app.get<FailoverThrottlerStorage>(ThrottlerStorage).lastStore).toBe('redis');
    }
    expect((await redis.keys(`${keyPrefix}{rl:*:login}:hits`)).length).toBe(1);
  });

  it('a session ended through instance A is refused by instance B within a second', async () => {
    const user = await createIdentityUser(a);
    const res = await a.http({
      method: 'POST',
      url: '/api/users/login',
      payload: credentials(user),
      headers: { 'x-forwarded-for': '192.0.2.62' },
    });
    expect(res.statusCode).toBe(200);
    const { session_token: token, user_id: userId } = res.json<{ session_token: string; user_id: string }>();
    const sessionId = sessionIdOf(token);
    const me = (instance: TestApp) =>
      instance.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });
    expect((await me(b)).statusCode).toBe(200);

    const ended = await a.http({
      method: 'DELETE',
      url: `/api/users/${userId}/sessions/${sessionId}`,
      headers: bearer(token),
    });
    expect(ended.statusCode).toBe(200);
    const endedAt = Date.now();
    let refused = await me(b);
    while (refused.statusCode !== 401 && Date.now() - endedAt < 1_000) refused = await me(b);
    expectProblem(refused, 401, 'unauthorized');
    expect(Date.now() - endedAt).toBeLessThan(1_000);
  });

  it('a logout through instance B is honoured by instance B at once and by instance A within a second', async () => {
    const user = await createIdentityUser(b);
    const res = await b.http({
      method: 'POST',
      url: '/api/users/login',
      payload: credentials(user),
      headers: { 'x-forwarded-for': '192.0.2.63' },
    });
    const token = res.json().session_token as string;
    const me = (instance: TestApp) =>
      instance.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });
    // Both instances have the session in their caches now.
    expect((await me(a)).statusCode).toBe(200);
    expect((await me(b)).statusCode).toBe(200);
    expect(
      (await b.http({ method: 'POST', url: '/api/users/logout', headers: bearer(token) })).statusCode,
    ).toBe(200);
    expectProblem(await me(b), 401, 'unauthorized');
    const loggedOutAt = Date.now();
    let refused = await me(a);
    while (refused.statusCode !== 401 && Date.now() - loggedOutAt < 1_000) refused = await me(a);
    expectProblem(refused, 401, 'unauthorized');
  });
});
