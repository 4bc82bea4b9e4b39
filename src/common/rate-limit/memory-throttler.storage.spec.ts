import { afterAll, afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { MemoryThrottlerStorage } from './memory-throttler.storage.js';

describe('MemoryThrottlerStorage', () => {
  let store: MemoryThrottlerStorage;
  beforeEach(() => {
    jest.useFakeTimers({ now: 1_000_000, doNotFake: ['nextTick', 'setImmediate'] });
    store = new MemoryThrottlerStorage();
  });
  afterEach(() => {
    store.close();
    jest.useRealTimers();
  });

  it('counts hits in a window that starts at the first hit and blocks past the limit', async () => {
    expect(await store.increment('k', 60_000, 2, 30_000, 'p')).toEqual({
      totalHits: 1,
      timeToExpire: 60,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
    jest.advanceTimersByTime(10_000);
    expect(await store.increment('k', 60_000, 2, 30_000, 'p')).toMatchObject({
      totalHits: 2,
      timeToExpire: 50,
      isBlocked: false,
    });
    expect(await store.increment('k', 60_000, 2, 30_000, 'p')).toEqual({
      totalHits: 3,
      timeToExpire: 50,
      isBlocked: true,
      timeToBlockExpire: 30,
    });
    expect(store.blockedFor('k', 'p')).toBe(30);
    // Still blocked while the block lasts, even after the hit window has ended.
    jest.advanceTimersByTime(29_000);
    expect(await store.increment('k', 60_000, 2, 30_000, 'p')).toMatchObject({
      isBlocked: true,
      timeToBlockExpire: 1,
    });
  });

  it('starts a new window once the old one ends, and lifts the block when it runs out', async () => {
    for (let i = 0; i < 3; i++) await store.increment('k', 1_000, 2, 5_000, 'p');
    expect(store.blockedFor('k', 'p')).toBe(5);
    jest.advanceTimersByTime(5_000);
    expect(store.blockedFor('k', 'p')).toBe(0);
    expect(await store.increment('k', 1_000, 2, 5_000, 'p')).toEqual({
      totalHits: 1,
      timeToExpire: 1,
      isBlocked: false,
      timeToBlockExpire: 0,
    });
  });

  it('keeps one window per key and policy, and forgets one on reset', async () => {
    await store.increment('k', 60_000, 5, 60_000, 'a');
    await store.increment('k', 60_000, 5, 60_000, 'a');
    expect(await store.increment('k', 60_000, 5, 60_000, 'b')).toMatchObject({ totalHits: 1 });
    expect(await store.increment('other', 60_000, 5, 60_000, 'a')).toMatchObject({ totalHits: 1 });
    store.reset('k', 'a');
    expect(await store.increment('k', 60_000, 5, 60_000, 'a')).toMatchObject({ totalHits: 1 });
    expect(await store.increment('k', 60_000, 5, 60_000, 'b')).toMatchObject({ totalHits: 2 });
  });

  it('costs the same at any limit: one record per key, whatever the number of hits', async () => {
    for (let i = 0; i < 10_000; i++) await store.increment('busy', 60_000, 1_000_000, 60_000, 'p');
    expect(store.size).toBe(1);
    expect(await store.increment('busy', 60_000, 1_000_000, 60_000, 'p')).toMatchObject({
      totalHits: 10_001,
    });
  });

  it('sweeps ended windows and run-out blocks, and keeps live ones', async () => {
    await store.increment('short', 1_000, 5, 1_000, 'p');
    await store.increment('long', 120_000, 5, 120_000, 'p');
    for (let i = 0; i < 2; i++) await store.increment('blocked', 1_000, 1, 300_000, 'p');
    jest.advanceTimersByTime(60_000);
    expect(store.size).toBe(2);
    expect(store.blockedFor('blocked', 'p')).toBe(240);
  });
});

/**
 * The same calls against @nest-lab/throttler-storage-redis on a real Redis give the same answers: a route is
 * limited alike whether Redis or this process counts (FailoverThrottlerStorage switches between them).
 */
const REDIS_URL = process.env.TEST_REDIS_URL;
(REDIS_URL ? describe : describe.skip)('MemoryThrottlerStorage against the Redis store', () => {
  const redis = new Redis(REDIS_URL ?? '', {
    lazyConnect: true,
    keyPrefix: `throttler-parity-${randomUUID()}:`,
  });
  afterAll(() => redis.quit());

  it('answers every call of a sequence as the Redis store does', async () => {
    const shared = new ThrottlerStorageRedisService(redis);
    const memory = new MemoryThrottlerStorage();
    try {
      const calls: [string, number, number, number, string][] = [
        ['a', 2_000, 3, 1_000, 'p'],
        ['a', 2_000, 3, 1_000, 'p'],
        ['a', 2_000, 3, 1_000, 'q'],
        ['a', 2_000, 3, 1_000, 'p'],
        ['a', 2_000, 3, 1_000, 'p'],
        ['a', 2_000, 3, 1_000, 'p'],
        ['b', 2_000, 1, 1_000, 'p'],
        ['b', 2_000, 1, 1_000, 'p'],
      ];
      for (const call of calls) {
        const [fromRedis, fromMemory] = await Promise.all([
          shared.increment(...call),
          memory.increment(...call),
        ]);
        expect(fromMemory).toEqual(fromRedis);
      }
    } finally {
      memory.close();
    }
  });
});
