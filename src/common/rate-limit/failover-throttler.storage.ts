import type { OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import type { ThrottlerStorage } from '@nestjs/throttler';
import type { RedisConnection } from '../../redis/redis.connection.js';
import { MemoryThrottlerStorage } from './memory-throttler.storage.js';

const FAILURE_PAUSE_MS = 1_000;

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/**
 * Counters in Redis while it answers (every instance sees the same counts), in this process's memory
 * otherwise. Falling back keeps the service up and still limited, at worst N times the limit across N
 * instances during an outage; counting restarts in Redis as soon as the client is ready again.
 */
export class FailoverThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly memory = new MemoryThrottlerStorage();
  private readonly shared: ThrottlerStorageRedisService | null;

  constructor(private readonly redis: RedisConnection) {
    this.shared = redis.client ? new ThrottlerStorageRedisService(redis.client) : null;
  }

  private pausedUntil = 0;

  /** Which store the last increment went to; for tests and health. */
  lastStore: 'redis' | 'memory' = 'memory';

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    if (this.shared && this.redis.ready && Date.now() >= this.pausedUntil) {
      try {
        const record = await this.shared.increment(key, ttl, limit, blockDuration, throttlerName);
        this.lastStore = 'redis';
        this.redis.markUp();
        return record;
      } catch (error) {
        // A hung Redis keeps its connection "ready" while each command runs into the timeout: stop
        // paying that timeout on every request for a moment.
        this.pausedUntil = Date.now() + FAILURE_PAUSE_MS;
        this.redis.markDown(error);
      }
    } else if (this.shared) {
      this.redis.markDown();
    }
    this.lastStore = 'memory';
    return this.memory.increment(key, ttl, limit, blockDuration, throttlerName);
  }

  /**
   * How many seconds `key` stays blocked under `throttlerName` (0: not blocked), without counting a hit:
   * a check before work whose failures alone are counted (failed logins per account). Reads each store's
   * own block marker: @nest-lab/throttler-storage-redis keeps `{<key>:<name>}:blocked` with a TTL, the
   * memory store a block expiry on the key's window (test/login-protection.e2e-spec.ts covers both).
   */
  async blockedFor(key: string, throttlerName: string): Promise<number> {
    const client = this.redis.client;
    if (client && this.redis.ready && Date.now() >= this.pausedUntil) {
      try {
        const ms = await client.pttl(`{${key}:${throttlerName}}:blocked`);
        this.redis.markUp();
        return ms > 0 ? Math.ceil(ms / 1000) : 0;
      } catch (error) {
        this.pausedUntil = Date.now() + FAILURE_PAUSE_MS;
        this.redis.markDown(error);
      }
    }
    return this.memory.blockedFor(key, throttlerName);
  }

  /** Forgets `key`'s count and block under `throttlerName` in both stores (a new code starts afresh). */
  async reset(key: string, throttlerName: string): Promise<void> {
    this.memory.reset(key, throttlerName);
    const client = this.redis.client;
    if (!client || !this.redis.ready || Date.now() < this.pausedUntil) return;
    try {
      await client.del(`{${key}:${throttlerName}}:hits`, `{${key}:${throttlerName}}:blocked`);
      this.redis.markUp();
    } catch (error) {
      this.pausedUntil = Date.now() + FAILURE_PAUSE_MS;
      this.redis.markDown(error);
    }
  }

  onApplicationShutdown(): void {
    this.memory.close();
  }
}
