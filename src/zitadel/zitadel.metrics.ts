import { Counter, Gauge, Histogram } from 'prom-client';
import { ApiError } from '../common/errors/api-error.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import type { CircuitState } from './resilience.js';
import {
  InvalidCredentialsError,
  UserBlockedError,
  ZitadelError,
  type ZitadelClient,
} from './zitadel.client.js';

/**
 * How a call to Zitadel ended:
 * - success
 * - rejected: Zitadel answered and said no (not found, conflict, wrong password, invalid token…)
 * - unavailable: no usable answer (network error, timeout, 5xx/429 after retries, circuit open)
 * - error: anything else (a bug or an unexpected answer)
 */
export type ZitadelOutcome = 'success' | 'rejected' | 'unavailable' | 'error';

export function outcomeOf(error: unknown): ZitadelOutcome {
  if (error instanceof ApiError) return error.code === 'upstream_unavailable' ? 'unavailable' : 'rejected';
  if (
    error instanceof ZitadelError ||
    error instanceof InvalidCredentialsError ||
    error instanceof UserBlockedError
  )
    return 'rejected';
  return 'error';
}

const CIRCUIT_STATES: readonly CircuitState[] = ['closed', 'half-open', 'open'];

/**
 * Wraps a ZitadelClient so that every call is measured, by operation (the method name: a fixed set) and
 * outcome: `zitadel_call_duration_seconds` (latency including retries, as the caller waits for it) and
 * `zitadel_call_errors_total`. `zitadel_circuit_breaker_state` reports the breaker, read at each scrape.
 */
export function instrumentZitadelClient(
  client: ZitadelClient,
  metrics: MetricsService,
  circuitState: () => CircuitState,
): ZitadelClient {
  const registers = [metrics.registry];
  const duration = new Histogram({
    name: 'zitadel_call_duration_seconds',
    help: 'Calls to Zitadel by operation and outcome (success, rejected, unavailable, error), retries included',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const errors = new Counter({
    name: 'zitadel_call_errors_total',
    help: 'Calls to Zitadel that did not succeed, by operation and outcome (rejected, unavailable, error)',
    labelNames: ['operation', 'outcome'] as const,
    registers,
  });
  new Gauge({
    name: 'zitadel_circuit_breaker_state',
    help: 'State of the circuit breaker in front of Zitadel: 1 for the current state, 0 for the others',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const current = circuitState();
      for (const state of CIRCUIT_STATES) this.set({ state }, state === current ? 1 : 0);
    },
  });

  const wrapped = new WeakMap<object, unknown>();
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      // Only the class's methods are operations; a function set on the instance (a test's spy) is left alone.
      if (
        typeof value !== 'function' ||
        typeof property !== 'string' ||
        property === 'constructor' ||
        Object.hasOwn(target, property)
      )
        return value;
      let method = wrapped.get(value);
      if (!method) {
        const operation = property;
        const original = value as (...args: unknown[]) => unknown;
        // The client's own calls between its methods go to the target, unmeasured: one call, one sample.
        method = (...args: unknown[]): unknown => {
          const end = duration.startTimer({ operation });
          const result = original.apply(target, args);
          if (!(result instanceof Promise)) return result;
          return result.then(
            (resolved: unknown) => {
              end({ outcome: 'success' });
              return resolved;
            },
            (error: unknown) => {
              const outcome = outcomeOf(error);
              end({ outcome });
              errors.inc({ operation, outcome });
              throw error;
            },
          );
        };
        wrapped.set(value, method);
      }
      return method;
    },
  });
}
