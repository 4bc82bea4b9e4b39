import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import pg from 'pg';
import { Counter, Gauge } from 'prom-client';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { DATABASE_CONNECTION_URL } from '../database/database.module.js';
import { MetricsService } from '../metrics/metrics.service.js';

/** The channel the ChangeNotifications migration's triggers notify on. */
export const CHANGE_CHANNEL = 'users_api_changes';
/** Tables whose changes are announced: `<table>:<id>,<id>,…` or `<table>:*`. */
export type ChangedTable = 'users' | 'sessions';
/** The ids a statement changed, or every row ('*': more than the payload holds, or a flush). */
export type ChangedIds = readonly string[] | '*';
const TRIGGERS = [
  'users_notify_update',
  'users_notify_delete',
  'sessions_notify_update',
  'sessions_notify_delete',
];
const SYNC_PREFIX = 'sync:';

/** How long a barrier waits for its own notice before it gives up on the listener. */
const BARRIER_TIMEOUT_MS = 2_000;
/** The listener's own liveness probe: a connection that stopped answering is a lost connection. */
const PROBE_INTERVAL_MS = 10_000;
const PROBE_TIMEOUT_MS = 5_000;
const RECONNECT_DELAYS_MS = [100, 500, 1_000, 2_000, 5_000];

export interface ChangeListener {
  /** A statement changed these rows of `table`. */
  changed(table: ChangedTable, ids: ChangedIds): void;
  /** Forget everything: the listener was (re)connected or lost, so notices may have been missed. */
  flush(): void;
}

/**
 * PostgreSQL LISTEN/NOTIFY for this instance's caches. One dedicated connection (outside the pool, as
 * LISTEN needs a session of its own) listens on CHANGE_CHANNEL, where the ChangeNotifications triggers
 * announce every committed change of a session's or user's cached columns, and passes each notice to the
 * registered caches.
 *
 * `trusted` is the whole safety argument: it is true only while that connection is up, listening, and the
 * triggers exist. Whenever it is not (not yet connected, connection dropped or silent, triggers missing),
 * caches are flushed and bypassed, so every check reads the database, until the connection is back, is
 * listening again and the caches have been flushed once more (a notice sent while nobody listened is lost,
 * so whatever was cached before may be stale). `generation` changes with every notice and flush: a cache
 * stores a value it read only when no notice arrived while it was reading (see CoherentCache.load).
 *
 * `barrier()` gives read-your-writes on the writing instance: notices are delivered in commit order, so
 * once a notice sent after a write's commit comes back, the write's own notices have been applied.
 */
@Injectable()
export class ChangeFeedService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('ChangeFeed');
  private readonly enabled: boolean;
  private readonly listeners = new Set<ChangeListener>();
  private readonly barriers = new Map<string, () => void>();
  private client: pg.Client | null = null;
  private listening = false;
  private generationCount = 0;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly notices: Counter<'kind'>;
  private readonly connectTimeoutMs: number;
  private readonly listenUrl: string;

  constructor(
    config: ConfigService<AppConfig, true>,
    @Inject(DATABASE_CONNECTION_URL) url: string,
    private readonly dataSource: DataSource,
    metrics: MetricsService,
  ) {
    const database = config.get('database', { infer: true });
    this.enabled = database.cache.enabled;
    this.listenUrl = database.cache.listenUrl ?? url;
    this.connectTimeoutMs = database.connectTimeoutMs;
    this.notices = new Counter({
      name: 'cache_change_notices_total',
      help: 'Change notices received from PostgreSQL by kind (row, flush: a whole table, sync: a barrier)',
      labelNames: ['kind'] as const,
      registers: [metrics.registry],
    });
    const trusted = () => this.trusted;
    new Gauge({
      name: 'cache_trusted',
      help: '1 while the change listener is connected and the caches are in use; 0 while every read goes to the database',
      registers: [metrics.registry],
      collect() {
        this.set(trusted() ? 1 : 0);
      },
    });
  }

  /** Whether caches may answer from memory right now. */
  get trusted(): boolean {
    return this.listening;
  }

  /** Changes with every notice and every flush. */
  get generation(): number {
    return this.generationCount;
  }

  register(listener: ChangeListener): void {
    this.listeners.add(listener);
  }

  async onModuleInit(): Promise<void> {
    if (!this.enabled) {
      this.logger.log('Caches are off (CACHE_ENABLED=false): every token check reads the database');
      return;
    }
    // Start-up waits for the first connection, so that the first requests are served from a trusted
    // cache; if it fails, the service starts anyway with the caches bypassed and keeps reconnecting.
    await this.connect();
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.probeTimer);
    this.untrust();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  /**
   * Resolves once every change this instance committed before the call has been applied to its caches.
   * Called before a write's answer is sent (see app.ts). Never throws: if the notice does not come back in
   * time, the listener is treated as lost, which flushes and bypasses the caches, a safe state.
   */
  async barrier(): Promise<void> {
    if (!this.listening) return;
    const nonce = randomUUID();
    const arrived = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        this.barriers.delete(nonce);
        resolve(false);
      }, BARRIER_TIMEOUT_MS).unref();
      this.barriers.set(nonce, () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    try {
      await this.dataSource.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, SYNC_PREFIX + nonce]);
    } catch (error) {
      this.barriers.get(nonce)?.();
      this.barriers.delete(nonce);
      this.lost(this.client, `the barrier notice could not be sent (${(error as Error).message})`);
      return;
    }
    if (!(await arrived)) this.lost(this.client, 'a barrier notice did not come back in time');
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({
      connectionString: this.listenUrl,
      application_name: 'users-api-change-feed',
      connectionTimeoutMillis: this.connectTimeoutMs,
      keepAlive: true,
    });
    this.client = client;
    client.on('error', (error) => this.lost(client, error.message));
    client.on('end', () => this.lost(client, 'the connection ended'));
    client.on('notification', (message) => {
      if (this.client === client && message.channel === CHANGE_CHANNEL) this.receive(message.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
      const { rows } = await client.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM pg_trigger WHERE tgname = ANY($1)',
        [TRIGGERS],
      );
      if (rows[0].n !== TRIGGERS.length) {
        throw new Error(
          'the change-notification triggers are missing (migration ChangeNotifications not applied)',
        );
      }
    } catch (error) {
      this.lost(client, (error as Error).message);
      return;
    }
    if (this.client !== client) return;
    // Listening from here on: whatever was cached before may have missed a notice.
    this.flushAll();
    this.listening = true;
    if (this.reconnectAttempt > 0)
      this.logger.log('Change listener reconnected; caches flushed and in use again');
    this.reconnectAttempt = 0;
    clearInterval(this.probeTimer);
    this.probeTimer = setInterval(() => this.probe(client), PROBE_INTERVAL_MS).unref();
  }

  /** A connection that silently stopped answering (a dead peer, a stuck network) counts as lost. */
  private probe(client: pg.Client): void {
    let answered = false;
    const timer = setTimeout(() => {
      if (!answered) this.lost(client, 'the listener connection stopped answering');
    }, PROBE_TIMEOUT_MS).unref();
    client.query('SELECT 1').then(
      () => {
        answered = true;
        clearTimeout(timer);
      },
      (error: Error) => {
        answered = true;
        clearTimeout(timer);
        this.lost(client, error.message);
      },
    );
  }

  private receive(payload: string): void {
    if (payload.startsWith(SYNC_PREFIX)) {
      this.notices.inc({ kind: 'sync' });
      const nonce = payload.slice(SYNC_PREFIX.length);
      this.barriers.get(nonce)?.();
      this.barriers.delete(nonce);
      return;
    }
    const colon = payload.indexOf(':');
    const table = payload.slice(0, colon);
    if (table !== 'users' && table !== 'sessions') return;
    const list = payload.slice(colon + 1);
    const ids: ChangedIds = list === '*' ? '*' : list.split(',');
    this.notices.inc({ kind: ids === '*' ? 'flush' : 'row' });
    this.generationCount++;
    for (const listener of this.listeners) listener.changed(table, ids);
  }

  private lost(client: pg.Client | null, reason: string): void {
    if (client === null || this.client !== client || this.closed) return;
    this.client = null;
    clearInterval(this.probeTimer);
    const wasListening = this.listening;
    this.untrust();
    client.end().catch(() => undefined);
    const delay = RECONNECT_DELAYS_MS[Math.min(this.reconnectAttempt, RECONNECT_DELAYS_MS.length - 1)];
    this.reconnectAttempt++;
    if (wasListening || this.reconnectAttempt === 1) {
      this.logger.warn(`Change listener lost (${reason}); caches bypassed, reconnecting in ${delay} ms`);
    }
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
    this.reconnectTimer.unref();
  }

  /** Stop trusting and forget: waiting barriers return at once (nothing is cached to be stale). */
  private untrust(): void {
    this.listening = false;
    this.flushAll();
    for (const release of this.barriers.values()) release();
    this.barriers.clear();
  }

  private flushAll(): void {
    this.generationCount++;
    for (const listener of this.listeners) listener.flush();
  }
}
