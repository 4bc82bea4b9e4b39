import {
  BrokenCircuitError,
  CircuitState as BreakerState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  retry,
  timeout,
  wrap,
  type IPolicy,
} from 'cockatiel';
import { ApiError } from '../common/errors/api-error.js';
import type { ZitadelConnection } from './zitadel-connection.js';

/** Consecutive failed exchanges that open the circuit, and how long it stays open, unless configured. */
export const DEFAULT_CIRCUIT = { failureThreshold: 5, resetMs: 2_000 };

export type CircuitState = 'closed' | 'open' | 'half-open';

/** The only text about an unreachable IdP that may reach API clients. */
export const UNAVAILABLE_MESSAGE = 'The identity provider is unavailable; try again shortly';

const BACKOFF_INITIAL_MS = 100;
const BACKOFF_MAX_MS = 2_000;

/** A failed attempt worth another try (network error, timeout, 5xx, 429), described for the log. */
export class TransientFailure extends Error {
  override readonly name = 'TransientFailure';
}

/** An answer that is not a transient failure travels through the policies as a value, not as an error. */
type Outcome<T> = { value: T } | { answer: unknown };

/**
 * What surrounds every exchange with Zitadel (its API over Connect and its OIDC endpoints), built from
 * cockatiel's policies: a timeout per attempt, retries with exponential backoff for idempotent calls, and
 * one circuit breaker for all calls. While Zitadel is down every call would wait for its full timeout (and
 * retries) before answering 503; after `failureThreshold` consecutive failed exchanges the circuit opens and
 * calls fail at once; after `resetMs` a trial call is let through (half-open), whose success closes it.
 * Only transport failures, timeouts and Zitadel's server-side errors count: Zitadel refusing a request is
 * an answer, and proves it is up.
 */
export class Resilience {
  private readonly breaker;
  private readonly once: IPolicy;
  private readonly retried: IPolicy;
  private readonly retries: number;

  constructor(
    options: Pick<ZitadelConnection, 'timeoutMs' | 'retries' | 'circuit'>,
    private readonly logger?: { warn(msg: string): void },
  ) {
    this.retries = Math.max(0, options.retries);
    const circuit = options.circuit ?? DEFAULT_CIRCUIT;
    const transient = handleWhen(
      (error) => error instanceof TransientFailure || error instanceof TaskCancelledError,
    );
    this.breaker = circuitBreaker(transient, {
      halfOpenAfter: circuit.resetMs,
      breaker: new ConsecutiveBreaker(circuit.failureThreshold),
    });
    this.breaker.onBreak((reason) => {
      const why = 'error' in reason ? describe(reason.error) : 'isolated';
      this.logger?.warn(`Zitadel circuit open for the next calls after: ${why}`);
    });
    // Aggressive: the attempt's promise is abandoned at the deadline, and its signal aborts the request.
    const perAttempt = timeout(options.timeoutMs, TimeoutStrategy.Aggressive);
    const backoff = new ExponentialBackoff({ initialDelay: BACKOFF_INITIAL_MS, maxDelay: BACKOFF_MAX_MS });
    const retrying = retry(transient, { maxAttempts: this.retries, backoff });
    this.once = wrap(this.breaker, perAttempt);
    this.retried = wrap(retrying, this.breaker, perAttempt);
  }

  /** The breaker's state, for the metrics. */
  get circuitState(): CircuitState {
    switch (this.breaker.state) {
      case BreakerState.Closed:
        return 'closed';
      case BreakerState.HalfOpen:
        return 'half-open';
      case BreakerState.Open:
      case BreakerState.Isolated:
        return 'open';
    }
  }

  /**
   * Runs `attempt` under the policies. `attempt` throws TransientFailure for what may be retried; anything
   * else it throws is Zitadel's answer and passes through unchanged. When no attempt succeeds the caller
   * gets a 503 ApiError (`what` names the call in the log line).
   */
  async run<T>(what: string, idempotent: boolean, attempt: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const policy = idempotent ? this.retried : this.once;
    let outcome: Outcome<T>;
    try {
      outcome = await policy.execute(async ({ signal }): Promise<Outcome<T>> => {
        try {
          return { value: await attempt(signal) };
        } catch (error) {
          if (error instanceof TransientFailure) throw error;
          return { answer: error };
        }
      });
    } catch (error) {
      if (error instanceof BrokenCircuitError) throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
      if (error instanceof TransientFailure || error instanceof TaskCancelledError) {
        const attempts = idempotent ? 1 + this.retries : 1;
        this.logger?.warn(`Zitadel ${what} failed after ${attempts} attempt(s): ${describe(error)}`);
        throw ApiError.upstreamUnavailable(UNAVAILABLE_MESSAGE);
      }
      throw error;
    }
    if ('answer' in outcome) throw outcome.answer;
    return outcome.value;
  }
}

export function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${error.name}: ${error.message}${cause}`;
}
