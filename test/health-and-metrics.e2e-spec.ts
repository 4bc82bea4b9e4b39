import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SchedulerRegistry } from '@nestjs/schedule';
import { DataSource } from 'typeorm';
import { createIdentityUser, credentials } from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { expectProblem } from './support/problem.js';

describe('health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('reports live without touching dependencies', async () => {
    const res = await t.http({ method: 'GET', url: '/health/live' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok' });
  });

  it('reports ready when the database answers', async () => {
    const res = await t.http({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', details: { database: { status: 'up' } } });
  });

  it('reports not ready, in the error shape, when the database is gone; live stays 200', async () => {
    await t.app.get(DataSource).destroy();
    const res = await t.http({ method: 'GET', url: '/health/ready' });
    expectProblem(res, 503, 'upstream_unavailable');
    expect((await t.http({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
  });
});

describe('metrics', () => {
  it('counts requests by route template and status, and reports the database pool', async () => {
    const t = await startTestApp();
    try {
      await t.http({ method: 'GET', url: '/health/live' });
      await t.http({ method: 'GET', url: '/no/such/route/12345' });
      const res = await t.http({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      expect(res.body).toMatch(
        /http_requests_total\{method="GET",route="\/health\/live",status_code="200"\} 1/,
      );
      // Unknown URLs share one label value: callers cannot blow up the metric's cardinality.
      expect(res.body).toMatch(/route="unmatched",status_code="404"/);
      expect(res.body).not.toContain('12345');
      expect(res.body).toMatch(/http_request_duration_seconds_bucket/);
      expect(res.body).toMatch(/db_pool_connections\{state="total"\} \d+/);
    } finally {
      await t.close();
    }
  });

  describe('when not public (the production default)', () => {
    const token = 'a-long-metrics-token-0123456789';
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ METRICS_PUBLIC: 'false', METRICS_TOKEN: token });
    });
    afterAll(() => t.close());

    it('requires the metrics token', async () => {
      expectProblem(await t.http({ method: 'GET', url: '/metrics' }), 401, 'unauthorized');
      const wrong = await t.http({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: 'Bearer nope' },
      });
      expectProblem(wrong, 401, 'unauthorized');
      const right = await t.http({
        method: 'GET',
        url: '/metrics',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(right.statusCode).toBe(200);
    });

    it('is not exposed at all without a token', async () => {
      const closed = await startTestApp({ METRICS_PUBLIC: 'false' });
      try {
        expectProblem(await closed.http({ method: 'GET', url: '/metrics' }), 404, 'not_found');
      } finally {
        await closed.close();
      }
    });
  });

  it('reports calls to Zitadel by operation and outcome, the circuit breaker and rate-limit refusals', async () => {
    const t = await startTestApp({ RATE_LIMIT_LOGIN: '1/1m' });
    try {
      const user = await createIdentityUser(t);
      const login = () =>
        t.http({
          method: 'POST',
          url: '/api/users/login',
          payload: { ...credentials(user), password: 'Wrong-Passw0rd!' },
        });
      expect((await login()).statusCode).toBe(401);
      expectProblem(await login(), 429, 'rate_limited');

      const body = (await t.http({ method: 'GET', url: '/metrics' })).body;
      expect(body).toMatch(
        /zitadel_call_duration_seconds_count\{operation="addHumanUser",outcome="success"\} 1/,
      );
      // The wrong password: Zitadel answered and refused.
      expect(body).toMatch(/zitadel_call_errors_total\{operation="checkPassword",outcome="rejected"\} 1/);
      expect(body).toMatch(
        /zitadel_call_duration_seconds_bucket\{le="0.1",operation="checkPassword",outcome="rejected"\}/,
      );
      expect(body).toMatch(/zitadel_circuit_breaker_state\{state="closed"\} 1/);
      expect(body).toMatch(/zitadel_circuit_breaker_state\{state="open"\} 0/);
      expect(body).toMatch(/rate_limit_refusals_total\{policy="login"\} 1/);
    } finally {
      await t.close();
    }
  });
});

describe('scheduled jobs', () => {
  it('registers suspension expiry and reconciliation with @nestjs/schedule, and removes them at shutdown', async () => {
    const t = await startTestApp({
      SUSPENSION_CHECK_INTERVAL_MS: '3600000',
      ZITADEL_RECONCILE_INTERVAL_SECONDS: '3600',
    });
    const registry = t.app.get(SchedulerRegistry);
    try {
      expect(registry.getIntervals()).toContain('suspension-expiry');
      expect(registry.getTimeouts()).toContain('zitadel-reconcile');
    } finally {
      await t.close();
    }
    expect(registry.getIntervals()).not.toContain('suspension-expiry');
    expect(registry.getTimeouts()).not.toContain('zitadel-reconcile');
  });
});
