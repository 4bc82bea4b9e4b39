import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Redis } from 'ioredis';
import type { AppConfig } from '../config/app-config.js';

/**
 * The one Redis client of an instance (shared rate-limit counters), or none when REDIS_URL is unset.
 *
 * Redis is an optimisation here, never a dependency: a dead or hung Redis must not fail or stall a
 * request. So the offline queue is off (a command while disconnected fails at once instead of
 * waiting for a reconnect), every command has a timeout, and the client reconnects forever in the
 * background. Callers ask `ready` and fall back to local state when it is false.
 */
@Injectable()
export class RedisConnection implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Redis');
  readonly client: Redis | null;
  private readonly timeoutMs: number;
  /** Whether the last transition we logged was "unavailable", so an outage is reported once, not per retry. */
  private reportedDown = false;

  constructor(config: ConfigService<AppConfig, true>) {
    const { url, timeoutMs, keyPrefix } = config.get('redis', { infer: true });
    this.timeoutMs = timeoutMs;
    this.client = url
      ? new Redis(url, {
          enableOfflineQueue: false,
          commandTimeout: timeoutMs,
          connectTimeout: Math.max(timeoutMs, 1_000),
          maxRetriesPerRequest: 1,
          // ioredis waits this long for a socket to close on disconnect, even one that never opened.
          disconnectTimeout: timeoutMs,
          // Keep trying in the background, quickly enough that recovery is noticed within a second.
          retryStrategy: (attempt) => Math.min(100 * attempt, 1_000),
          connectionName: 'users-api',
          // Every key this service writes starts with it, so several services (or test runs) can share a Redis.
          keyPrefix,
        })
      : null;
    this.client?.on('ready', () => this.markUp());
    // Without an 'error' listener ioredis reports every failed reconnect as an unhandled error.
    this.client?.on('error', (error: Error) => this.markDown(error));
    this.client?.on('close', () => this.markDown());
  }

  get configured(): boolean {
    return this.client !== null;
  }

  /** Connected and past the ready check: commands will be sent, not refused. */
  get ready(): boolean {
    return this.client?.status === 'ready';
  }

  /** Called by users of the client when a command failed (timeout, connection lost). */
  markDown(error?: unknown): void {
    if (this.reportedDown || !this.client) return;
    this.reportedDown = true;
    const reason = error instanceof Error ? `: ${error.message}` : '';
    this.logger.warn(
      `Redis is unavailable${reason}. Rate limits fall back to per-instance counting until it returns.`,
    );
  }

  /**
   * Called after a command succeeded. A frozen Redis keeps its connection (no 'ready' event when it
   * thaws), so recovery is also noticed here.
   */
  markUp(): void {
    if (!this.reportedDown) return;
    this.reportedDown = false;
    this.logger.log('Redis is reachable again: rate limits are shared again');
  }

  /** A round trip, bounded by the command timeout; false instead of throwing. */
  async ping(): Promise<boolean> {
    if (!this.ready) return false;
    try {
      const answered = (await this.client!.ping()) === 'PONG';
      if (answered) this.markUp();
      return answered;
    } catch (error) {
      this.markDown(error);
      return false;
    }
  }

  /** Give a reachable Redis a moment to connect, so the first requests already share counters. */
  async onModuleInit(): Promise<void> {
    if (!this.client || this.ready) return;
    const ac = new AbortController();
    await Promise.race([
      once(this.client, 'ready', { signal: ac.signal }).catch(() => undefined),
      sleep(Math.max(this.timeoutMs, 1_000), undefined, { signal: ac.signal }).catch(() => undefined),
    ]);
    ac.abort();
    if (!this.ready) this.markDown();
  }

  onApplicationShutdown(): void {
    this.client?.disconnect(false);
  }
}
