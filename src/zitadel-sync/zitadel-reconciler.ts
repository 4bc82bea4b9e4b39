import {
  Inject,
  Injectable,
  Logger,
  type OnModuleDestroy,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChangeFeedService } from '../change-feed/change-feed.service.js';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { UsersService } from '../users/users.service.js';
import { ZitadelClient } from '../zitadel/zitadel.client.js';
import { ZitadelSyncMetrics } from './zitadel-sync.metrics.js';
import { ZitadelSyncService } from './zitadel-sync.service.js';

/** Session-level advisory lock: one reconciler at a time across all instances on this database. */
export const RECONCILE_LOCK_KEY = 'users-api:zitadel-reconcile';
/** Its name among @nestjs/schedule's timeouts. */
export const RECONCILE_TIMEOUT = 'zitadel-reconcile';
/** The first run comes soon after start (events missed while down), not a whole interval later. */
const FIRST_RUN_DELAY_MS = 10_000;

export interface ReconcileResult {
  /** true when another instance (or run) held the lock: nothing was done. */
  skipped: boolean;
  checked: number;
  fixed: number;
}

export const RECONCILE_OPTIONS = Symbol('RECONCILE_OPTIONS');
export interface ReconcileOptions {
  intervalSeconds: number;
  pageSize: number;
  pageDelayMs: number;
}

/**
 * Repairs drift between Zitadel and the local cache (missed webhooks, downtime, edits behind our back):
 * for every organization the service account may read, reads the project's role grants and pages through
 * Zitadel's ListUsers, applies each user as an event
 * would, then confirms with Zitadel that local users it did not list are really gone. Paced (page size, pause between pages) so that it
 * never hammers Zitadel, and guarded by a PostgreSQL advisory lock held on one connection for the run.
 * Scheduled as a named timeout of @nestjs/schedule, re-armed when a run ends, so runs never overlap in one
 * instance and the interval counts from the end of the previous run.
 */
@Injectable()
export class ZitadelReconciler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(ZitadelReconciler.name);
  private current: Promise<unknown> | undefined;
  private readonly stopping = new AbortController();

  constructor(
    @Inject(RECONCILE_OPTIONS) private readonly options: ReconcileOptions,
    private readonly dataSource: DataSource,
    private readonly zitadel: ZitadelClient,
    private readonly users: UsersService,
    private readonly sync: ZitadelSyncService,
    private readonly metrics: ZitadelSyncMetrics,
    private readonly scheduler: SchedulerRegistry,
    private readonly feed: ChangeFeedService,
  ) {}

  onApplicationBootstrap(): void {
    if (this.options.intervalSeconds > 0) {
      this.schedule(Math.min(FIRST_RUN_DELAY_MS, this.options.intervalSeconds * 1000));
    }
  }

  /**
   * First thing at shutdown (module destroy comes before every shutdown hook): stop the timer and let a run
   * in progress stop at its next step while Zitadel (the embedded one closes in a shutdown hook) and the
   * pool still answer; waiting on a closed Zitadel's timeouts instead held the shutdown past its deadline.
   */
  async onModuleDestroy(): Promise<void> {
    this.stopping.abort();
    this.unschedule();
    await this.current?.catch(() => undefined);
  }

  /** One run; also callable directly (tests, an admin trigger). Never throws for a busy lock. */
  async run(): Promise<ReconcileResult> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    try {
      const [{ locked }] = (await runner.query('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [
        RECONCILE_LOCK_KEY,
      ])) as Array<{ locked: boolean }>;
      if (!locked) {
        this.metrics.reconcileRuns.inc({ outcome: 'skipped' });
        this.logger.log('Reconciliation skipped: another instance is running it');
        return { skipped: true, checked: 0, fixed: 0 };
      }
      try {
        const result = await this.reconcile();
        // What it fixed is in this instance's caches before run() resolves, as for a write through the API.
        if (result.fixed) await this.feed.barrier();
        this.metrics.reconcileRuns.inc({ outcome: 'completed' });
        this.metrics.lastReconcile.set(Date.now() / 1000);
        this.logger.log(
          `Reconciliation with Zitadel: ${result.checked} user(s) checked, ${result.fixed} fixed`,
        );
        return result;
      } catch (error) {
        this.metrics.reconcileRuns.inc({ outcome: 'failed' });
        throw error;
      } finally {
        await runner
          .query('SELECT pg_advisory_unlock(hashtext($1))', [RECONCILE_LOCK_KEY])
          .catch(() => undefined);
      }
    } finally {
      // Back to the pool: the lock lives only as long as the run, never on an idle pooled connection.
      await runner.release();
    }
  }

  private async reconcile(): Promise<ReconcileResult> {
    const { pageSize } = this.options;
    const started = new Date();
    const seen = new Set<string>();
    let checked = 0;
    let fixed = 0;
    const count = (changed: boolean) => {
      checked++;
      this.metrics.reconcileChecked.inc();
      if (changed) {
        fixed++;
        this.metrics.reconcileFixed.inc();
      }
    };

    // Every organization the service account may read, each holding its own users and role grants.
    const orgIds: string[] = [];
    for (let offset = 0; ;) {
      const page = await this.zitadel.listOrganizations({ offset, limit: pageSize });
      orgIds.push(...page.organizations.map((org) => org.id));
      offset += page.organizations.length;
      if (page.organizations.length < pageSize || offset >= page.total) break;
      await this.pause();
    }

    // Everyone's roles in a few paged calls rather than one call per user.
    const roles = new Map<string, string[]>();
    for (const orgId of orgIds) {
      for (let offset = 0; ;) {
        const page = await this.zitadel.listProjectGrants({ offset, limit: pageSize, orgId });
        for (const grant of page.grants)
          roles.set(grant.userId, [...(roles.get(grant.userId) ?? []), ...grant.roles]);
        offset += page.grants.length;
        if (page.grants.length < pageSize || offset >= page.total) break;
        await this.pause();
      }
    }

    for (const orgId of orgIds) {
      for (let offset = 0; ;) {
        // The database's clock, as updated_at is written by it: rows written after this moment may hold
        // changes the page below does not show yet (an activation after the user was listed as inactive).
        const [{ now: listedAt }] = await this.dataSource.query<Array<{ now: Date }>>(
          'SELECT clock_timestamp() AS now',
        );
        const page = await this.zitadel.listUsers({ offset, limit: pageSize, orgId });
        for (const remote of page.users) {
          if (this.stopping.signal.aborted) return { skipped: false, checked, fixed };
          seen.add(remote.userId);
          const live = remote.state === 'USER_STATE_DELETED' ? null : remote;
          const listed = roles.get(remote.userId) ?? [];
          // The role listing is a little older than this user page: a user whose roles seem to differ from
          // the cache is asked about once more, so a grant changed meanwhile is not undone.
          const cached = (await this.users.findByZitadelId(remote.userId))?.roles;
          const current =
            live && (!cached || !sameRoles(cached, listed))
              ? await this.zitadel.getUserRoles(remote.userId, remote.orgId || orgId)
              : listed;
          const applied = await this.sync.apply(
            remote.userId,
            { remote: live && { ...live, orgId: live.orgId || orgId }, roles: current },
            undefined,
            undefined,
            listedAt,
          );
          // Written locally since the listing: the page may be older than the row, so ask Zitadel again.
          count(applied.outdated ? (await this.sync.refresh(remote.userId)).changed : applied.changed);
        }
        offset += page.users.length;
        if (page.users.length < pageSize || offset >= page.total) break;
        await this.pause();
      }
    }

    // Local users Zitadel did not list: deleted there while we missed the event. Only rows older than this
    // run, and each confirmed by id before being marked deleted, since a user may appear mid-listing.
    for (let after: string | null = null; ;) {
      const ids = await this.users.listZitadelIds(after, pageSize, started);
      for (const id of ids) {
        if (this.stopping.signal.aborted) return { skipped: false, checked, fixed };
        if (seen.has(id)) continue;
        count((await this.sync.apply(id, await this.sync.fetch(id))).changed);
      }
      if (ids.length < pageSize) break;
      after = ids[ids.length - 1];
      await this.pause();
    }
    return { skipped: false, checked, fixed };
  }

  private async pause(): Promise<void> {
    if (this.options.pageDelayMs > 0) {
      await sleep(this.options.pageDelayMs, undefined, { signal: this.stopping.signal }).catch(
        () => undefined,
      );
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopping.signal.aborted) return;
    const timeout = setTimeout(() => {
      this.unschedule();
      this.current = this.run()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'Reconciliation with Zitadel failed'))
        .finally(() => {
          this.current = undefined;
          this.schedule(this.options.intervalSeconds * 1000);
        });
    }, delayMs);
    // Never the reason the process stays alive.
    timeout.unref();
    this.scheduler.addTimeout(RECONCILE_TIMEOUT, timeout);
  }

  private unschedule(): void {
    if (this.scheduler.doesExist('timeout', RECONCILE_TIMEOUT))
      this.scheduler.deleteTimeout(RECONCILE_TIMEOUT);
  }
}

/** The cache stores roles sorted and unique, and `user` when there are none. */
function sameRoles(cached: string[], listed: string[]): boolean {
  const normal = listed.length ? [...new Set(listed)].sort() : ['user'];
  return normal.length === cached.length && normal.every((role, i) => role === cached[i]);
}

/** Options from configuration. */
export function reconcileOptionsFrom(config: ConfigService<AppConfig, true>): ReconcileOptions {
  const sync = config.get('zitadelSync', { infer: true });
  return {
    intervalSeconds: sync.reconcileIntervalSeconds,
    pageSize: sync.reconcilePageSize,
    pageDelayMs: sync.reconcilePageDelayMs,
  };
}
