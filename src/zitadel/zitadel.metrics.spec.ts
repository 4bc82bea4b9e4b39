import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { ApiError } from '../common/errors/api-error.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import type { CircuitState } from './resilience.js';
import { ZitadelError, type ZitadelClient } from './zitadel.client.js';
import { instrumentZitadelClient } from './zitadel.metrics.js';

/** Only the methods the test calls; the proxy measures whatever the client has. */
class FakeClient {
  calls = 0;
  async getUser(id: string) {
    this.calls++;
    await Promise.resolve();
    if (id === 'missing') throw new ZitadelError('not_found', undefined, 'no such user');
    if (id === 'down') throw ApiError.upstreamUnavailable('The identity provider is unavailable');
    if (id === 'bug') throw new TypeError('bug');
    return { userId: id };
  }
  /** Internal calls between methods are one call to the caller: measured once. */
  async getUserTwice(id: string) {
    await this.getUser(id);
    return this.getUser(id);
  }
}

describe('instrumentZitadelClient', () => {
  const setup = () => {
    const registry = new Registry();
    let state: CircuitState = 'closed';
    const fake = new FakeClient();
    const client = instrumentZitadelClient(
      fake as unknown as ZitadelClient,
      { registry } as MetricsService,
      () => state,
    ) as unknown as FakeClient;
    return { registry, client, fake, open: () => (state = 'open') };
  };

  it('measures each call by operation and outcome and counts the failures', async () => {
    const { registry, client } = setup();
    await expect(client.getUser('u1')).resolves.toEqual({ userId: 'u1' });
    await expect(client.getUser('missing')).rejects.toBeInstanceOf(ZitadelError);
    await expect(client.getUser('down')).rejects.toBeInstanceOf(ApiError);
    await expect(client.getUser('bug')).rejects.toBeInstanceOf(TypeError);
    await client.getUserTwice('u2');
    const text = await registry.metrics();
    expect(text).toContain('zitadel_call_duration_seconds_count{operation="getUser",outcome="success"} 1');
    expect(text).toContain(
      'zitadel_call_duration_seconds_count{operation="getUserTwice",outcome="success"} 1',
    );
    expect(text).toContain('zitadel_call_errors_total{operation="getUser",outcome="rejected"} 1');
    expect(text).toContain('zitadel_call_errors_total{operation="getUser",outcome="unavailable"} 1');
    expect(text).toContain('zitadel_call_errors_total{operation="getUser",outcome="error"} 1');
    expect(text).not.toContain('outcome="success"} 3');
  });

  it('reports the circuit breaker state at each scrape', async () => {
    const { registry, open } = setup();
    expect(await registry.metrics()).toContain('zitadel_circuit_breaker_state{state="closed"} 1');
    open();
    const text = await registry.metrics();
    expect(text).toContain('zitadel_circuit_breaker_state{state="open"} 1');
    expect(text).toContain('zitadel_circuit_breaker_state{state="closed"} 0');
  });

  it('keeps the client recognisable as what it wraps', () => {
    const { client } = setup();
    expect(client).toBeInstanceOf(FakeClient);
  });
});
