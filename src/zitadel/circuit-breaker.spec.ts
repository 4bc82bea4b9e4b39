import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker } from './circuit-breaker.js';

describe('CircuitBreaker', () => {
  const setup = () => {
    let now = 0;
    const breaker = new CircuitBreaker({ failureThreshold: 3, resetMs: 1_000 }, () => now);
    return { breaker, advance: (ms: number) => (now += ms) };
  };

  it('opens after the threshold of consecutive failures and refuses calls while open', () => {
    const { breaker } = setup();
    expect(breaker.failure()).toBe(false);
    expect(breaker.failure()).toBe(false);
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.failure()).toBe(true);
    expect(breaker.state).toBe('open');
    expect(breaker.tryAcquire()).toBe(false);
  });

  it('a success in between resets the count', () => {
    const { breaker } = setup();
    breaker.failure();
    breaker.failure();
    breaker.success();
    breaker.failure();
    breaker.failure();
    expect(breaker.state).toBe('closed');
  });

  it('lets one trial through after the reset time; its success closes, its failure re-opens', () => {
    const { breaker, advance } = setup();
    for (let i = 0; i < 3; i++) breaker.failure();
    advance(1_000);
    expect(breaker.state).toBe('half-open');
    expect(breaker.tryAcquire()).toBe(true);
    expect(breaker.tryAcquire()).toBe(false);
    expect(breaker.failure()).toBe(true);
    expect(breaker.state).toBe('open');
    advance(999);
    expect(breaker.tryAcquire()).toBe(false);
    advance(1);
    expect(breaker.tryAcquire()).toBe(true);
    breaker.success();
    expect(breaker.state).toBe('closed');
    expect(breaker.tryAcquire()).toBe(true);
  });
});
