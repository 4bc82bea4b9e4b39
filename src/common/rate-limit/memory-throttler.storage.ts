import type { ThrottlerStorage } from '@nestjs/throttler';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

interface Window {
  hits: number;
  /** When the current window ends (epoch ms). */
  expiresAt: number;
  /** When the block set by going over the limit ends (epoch ms); 0 when not blocked. */
  blockExpiresAt: number;
}

const SWEEP_INTERVAL_MS = 60_000;

/**
 * The counters in this process's memory, counted exactly as @nest-lab/throttler-storage-redis counts them
 * in Redis (its Lua script: INCR on a key that expires `ttl` after its first hit, a block key of
 * `blockDuration` once the count passes the limit), so a route is limited the same way whichever store
 * answers. One record per key and O(1) per request: @nestjs/throttler's own memory store keeps every
 * hit's expiry and filters that whole list on each request, which at a limit in the thousands per window
 * cost more CPU than the rest of the guard (a CPU and allocation profile in docs/proof.md).
 */
export class MemoryThrottlerStorage implements ThrottlerStorage {
  private readonly windows = new Map<string, Window>();
  private readonly sweep = setInterval(() => this.evictExpired(Date.now()), SWEEP_INTERVAL_MS).unref();

  increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    const now = Date.now();
    const id = windowId(key, throttlerName);
    let window = this.windows.get(id);
    if (!window) this.windows.set(id, (window = { hits: 0, expiresAt: 0, blockExpiresAt: 0 }));
    if (window.expiresAt <= now) {
      window.hits = 0;
      window.expiresAt = now + ttl;
    }
    window.hits += 1;
    let timeToExpire = window.expiresAt - now;
    let timeToBlockExpire = window.blockExpiresAt > now ? window.blockExpiresAt - now : 0;
    let isBlocked = timeToBlockExpire > 0;
    if (!isBlocked && window.hits > limit) {
      window.blockExpiresAt = now + blockDuration;
      isBlocked = true;
      timeToBlockExpire = blockDuration;
    }
    // A block of no duration (the script's "blocked but expired" branch): the hit starts a new window.
    if (isBlocked && timeToBlockExpire <= 0) {
      window.blockExpiresAt = 0;
      window.hits = 1;
      window.expiresAt = now + ttl;
      timeToExpire = ttl;
      isBlocked = false;
    }
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire: Math.ceil(timeToExpire / 1000),
      isBlocked,
      timeToBlockExpire: Math.ceil(timeToBlockExpire / 1000),
    });
  }

  /** Seconds `key` stays blocked under `throttlerName`; 0 when it is not. */
  blockedFor(key: string, throttlerName: string): number {
    const left = (this.windows.get(windowId(key, throttlerName))?.blockExpiresAt ?? 0) - Date.now();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  reset(key: string, throttlerName: string): void {
    this.windows.delete(windowId(key, throttlerName));
  }

  /** Windows that have ended and blocks that have run out hold nothing: memory stays bounded by live keys. */
  evictExpired(now: number): void {
    for (const [id, window] of this.windows) {
      if (window.expiresAt <= now && window.blockExpiresAt <= now) this.windows.delete(id);
    }
  }

  get size(): number {
    return this.windows.size;
  }

  close(): void {
    clearInterval(this.sweep);
    this.windows.clear();
  }
}

/** As the Redis store names its keys (`{<key>:<throttler>}`), so both keep one window per policy. */
const windowId = (key: string, throttlerName: string) => `${key}:${throttlerName}`;
