import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Logger } from '@nestjs/common';
import { ThrottlerStorage } from '@nestjs/throttler';
import type { FailoverThrottlerStorage } from '../src/common/rate-limit/failover-throttler.storage.js';
import { RedisConnection } from '../src/redis/redis.connection.js';
import { expectProblem } from './support/problem.js';
import { bearer, signedInUser, type SignedInUser } from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Our own redis-server on a free port, never the machine's shared one (other test runs use it).
 * .ci/run installs redis-server; without the binary these tests are skipped and say so.
 */
const hasRedisServer = spawnSync('redis-server', ['--version']).status === 0;
if (!hasRedisServer) {
  console.warn('redis-outage.e2e-spec: no redis-server binary on PATH; the Redis outage tests are skipped');
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

function startRedis(port: number): ChildProcess {
  return spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
}

async function stopRedis(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

/** Polls until `check` holds, failing after `timeoutMs`. */
async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

(hasRedisServer ? describe : describe.skip)('when Redis goes away and comes back', () => {
  let port: number;
  let redis: ChildProcess | undefined;
  let t: TestApp;
  let user: SignedInUser;
  let ipCounter = 0;
  const nextIp = () => `192.0.2.${100 + ++ipCounter}`;

  const store = () => t.app.get<FailoverThrottlerStorage>(ThrottlerStorage).lastStore;
  const ready = () => t.http({ method: 'GET', url: '/health/ready' });
  const me = () => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) });
  const wrongLogin = (ip: string) =>
    t.http({
      method: 'POST',
      url: '/api/users/login',
      payload: { email: 'nobody@example.test', password: 'Wrong-Passw0rd!' },
      headers: { 'x-forwarded-for': ip },
    });

  beforeAll(async () => {
    port = await freePort();
    redis = startRedis(port);
    t = await startTestApp({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      REDIS_TIMEOUT_MS: '200',
      RATE_LIMIT_LOGIN: '3/1m',
      TRUST_PROXY: 'loopback',
      LOGIN_FAILURE_MIN_MS: '0',
    });
    await eventually(() => t.app.get(RedisConnection).ready, 5_000, 'the first connection to Redis');
    user = await signedInUser(t);
  });
  afterAll(async () => {
    await t?.close();
    await stopRedis(redis);
  });

  it('uses Redis while it answers, and readiness says so', async () => {
    expect((await me()).statusCode).toBe(200);
    expect(store()).toBe('redis');
    const res = await ready();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      status: 'ok',
      details: { database: { status: 'up' }, redis: { status: 'up' } },
    });
  });

  it('keeps serving, still limited per instance, when Redis dies; warns once; readiness is degraded but 200', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      await stopRedis(redis);
      await eventually(() => !t.app.get(RedisConnection).ready, 2_000, 'the client to notice');

      for (let request = 0; request < 5; request++) {
        const started = Date.now();
        const res = await me();
        expect({ status: res.statusCode, fast: Date.now() - started < 1_000 }).toEqual({
          status: 200,
          fast: true,
        });
      }
      expect(store()).toBe('memory');

      // Limits still hold, counted in this instance's memory.
      const ip = nextIp();
      for (let attempt = 1; attempt <= 3; attempt++) expect((await wrongLogin(ip)).statusCode).toBe(401);
      expectProblem(await wrongLogin(ip), 429, 'rate_limited');

      const res = await ready();
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        status: 'degraded',
        details: { database: { status: 'up' }, redis: { status: 'degraded', message: expect.any(String) } },
      });
      const outageWarnings = warn.mock.calls.filter(([message]) =>
        /Redis is unavailable/.test(String(message)),
      );
      expect(outageWarnings).toHaveLength(1);
    } finally {
      warn.mockRestore();
    }
  });

  it('goes back to Redis when it returns on the same address', async () => {
    redis = startRedis(port);
    await eventually(
      async () => (await ready()).json<{ status: string }>().status === 'ok',
      5_000,
      'readiness ok',
    );
    expect((await me()).statusCode).toBe(200);
    expect(store()).toBe('redis');
    // The new (empty) Redis counts from scratch.
    const ip = nextIp();
    for (let attempt = 1; attempt <= 3; attempt++) expect((await wrongLogin(ip)).statusCode).toBe(401);
    expectProblem(await wrongLogin(ip), 429, 'rate_limited');
  });

  it('does not hang on a Redis that stops answering (connection open, no replies); warns once, recovers', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn');
    redis!.kill('SIGSTOP');
    try {
      for (let request = 0; request < 5; request++) {
        const started = Date.now();
        const res = await me();
        expect({ status: res.statusCode, fast: Date.now() - started < 1_000 }).toEqual({
          status: 200,
          fast: true,
        });
      }
      const started = Date.now();
      const res = await ready();
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'degraded' });
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(
        warn.mock.calls.filter(([message]) => /Redis is unavailable/.test(String(message))),
      ).toHaveLength(1);
    } finally {
      redis!.kill('SIGCONT');
      warn.mockRestore();
    }
    await eventually(
      async () => (await ready()).json<{ status: string }>().status === 'ok',
      5_000,
      'recovery',
    );
    // Past the storage's one-second pause after a failure, counting goes back to Redis.
    await sleep(1_100);
    expect((await me()).statusCode).toBe(200);
    expect(store()).toBe('redis');
  });
});

describe('when Redis is unreachable from the start', () => {
  it('starts and serves without it', async () => {
    const port = await freePort();
    const started = Date.now();
    const t = await startTestApp({ REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_TIMEOUT_MS: '200' });
    try {
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await t.http({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
      const res = await t.http({ method: 'GET', url: '/health/ready' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'degraded', details: { redis: { status: 'degraded' } } });
    } finally {
      await t.close();
    }
  });
});
