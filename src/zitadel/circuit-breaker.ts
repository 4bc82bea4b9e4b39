/**
 * A small circuit breaker for calls to Zitadel. While Zitadel is down every call would wait for its full
 * timeout (and retries) before answering 503; after `failureThreshold` consecutive failed exchanges the
 * circuit opens and calls fail at once. After `resetMs` one trial call is let through (half-open): its
 * success closes the circuit, its failure opens it for another `resetMs`. Only transport failures and
 * 5xx/429 count; Zitadel refusing a request (4xx) is an answer, and proves it is up.
 */
export interface CircuitBreakerOptions {
  failureThreshold: number;
  resetMs: number;
}

export const DEFAULT_CIRCUIT: CircuitBreakerOptions = { failureThreshold: 5, resetMs: 2_000 };

export type CircuitState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private trialInFlight = false;
  private opened = false;

  constructor(
    private readonly options: CircuitBreakerOptions = DEFAULT_CIRCUIT,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): CircuitState {
    if (!this.opened) return 'closed';
    return this.now() - this.openedAt >= this.options.resetMs ? 'half-open' : 'open';
  }

  /** Whether a call may go out now; in half-open state only one trial at a time. */
  tryAcquire(): boolean {
    switch (this.state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        if (this.trialInFlight) return false;
        this.trialInFlight = true;
        return true;
    }
  }

  success(): void {
    this.failures = 0;
    this.opened = false;
    this.trialInFlight = false;
  }

  /** Returns true when this failure opened (or re-opened) the circuit. */
  failure(): boolean {
    this.failures++;
    const trial = this.trialInFlight;
    this.trialInFlight = false;
    if (trial || (!this.opened && this.failures >= this.options.failureThreshold)) {
      this.opened = true;
      this.openedAt = this.now();
      return true;
    }
    return false;
  }
}
