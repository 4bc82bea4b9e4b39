import { Injectable, Logger } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { z } from 'zod';
import { ApiError } from '../common/errors/api-error.js';
import { SessionsService } from '../sessions/sessions.service.js';
import type { UserStatus } from '../users/entities/user.entity.js';
import { UsersService } from '../users/users.service.js';
import { ZitadelClient } from '../zitadel/zitadel.client.js';
import type { ZitadelUser } from '../zitadel/zitadel.types.js';
import { ZitadelSyncMetrics } from './zitadel-sync.metrics.js';

/** User events: each one makes us re-read the user from Zitadel. */
export const USER_EVENT_TYPES = new Set([
  'user.human.added',
  'user.human.selfregistered',
  'user.human.profile.changed',
  'user.human.email.changed',
  'user.human.email.verified',
  'user.username.changed',
  'user.deactivated',
  'user.reactivated',
  'user.locked',
  'user.unlocked',
  'user.removed',
]);

/** Role grant (authorization) events, on the `usergrant` aggregate; the grantee is in the payload. */
export const GRANT_EVENT_TYPES = new Set([
  'user.grant.added',
  'user.grant.changed',
  'user.grant.removed',
  'user.grant.deactivated',
  'user.grant.reactivated',
  'user.grant.cascade.changed',
  'user.grant.cascade.removed',
]);

/** Statuses in which a user holds no session: entering one ends them all, in the same transaction. */
const BLOCKED: ReadonlySet<UserStatus> = new Set(['inactive', 'deleted', 'suspended']);

/** The Actions v2 event body; unknown fields are ignored (Zitadel adds some over time). */
const eventSchema = z.object({
  aggregateID: z.string().min(1).max(200),
  aggregateType: z.string().min(1).max(64),
  // uint64 in Zitadel, bigint here: anything beyond PostgreSQL's bigint is refused rather than a 500.
  sequence: z
    .union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,19}$/)])
    .refine((value) => BigInt(value) <= 9_223_372_036_854_775_807n, 'sequence out of range'),
  event_type: z.string().min(1).max(200),
  event_payload: z.unknown().optional(),
});

export type EventOutcome = 'applied' | 'stale' | 'ignored';

export interface ZitadelSnapshot {
  /** null: Zitadel no longer knows the user. */
  remote: ZitadelUser | null;
  roles: string[];
}

interface Cursor {
  aggregateType: string;
  aggregateId: string;
  sequence: string;
}

/**
 * Applies Zitadel's view of a user to the local cache. Events are only triggers: the user and roles are
 * re-read from Zitadel rather than taken from the payload, so an event that arrives late or twice cannot
 * install an old state, and the per-aggregate sequence cursor keeps replays from doing any work at all.
 */
@Injectable()
export class ZitadelSyncService {
  private readonly logger = new Logger(ZitadelSyncService.name);

  constructor(
    private readonly zitadel: ZitadelClient,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly dataSource: DataSource,
    private readonly metrics: ZitadelSyncMetrics,
  ) {}

  /** Handles one verified event body. Throws ApiError invalid_request for a body that is no event. */
  async handleEvent(body: unknown): Promise<EventOutcome> {
    const parsed = eventSchema.safeParse(body);
    if (!parsed.success) throw ApiError.invalidRequest('The body is not a Zitadel event');
    const event = parsed.data;
    const subject = this.subjectOf(event);
    if (!subject) {
      this.metrics.events.inc({ outcome: 'ignored' });
      return 'ignored';
    }
    const cursor: Cursor = {
      aggregateType: event.aggregateType,
      aggregateId: event.aggregateID,
      sequence: String(event.sequence),
    };
    // Cheap early exit for replays, before any call to Zitadel; the transaction below decides for real.
    if (await this.isStale(cursor)) {
      this.metrics.events.inc({ outcome: 'stale' });
      return 'stale';
    }
    let result: Awaited<ReturnType<ZitadelSyncService['apply']>>;
    for (let attempt = 1; ; attempt++) {
      // Zitadel is read with no lock held, so an admin write may change the user here between that read
      // and the apply (a suspend's late event applied after the activate would end the new sessions).
      // The local version seen before the read tells: if it moved, read Zitadel again (twice at most).
      const seenVersion = attempt < 3 ? await this.localVersion(subject) : undefined;
      // A removal is final in Zitadel; anything else is read back from Zitadel as it is now.
      const snapshot: ZitadelSnapshot =
        event.event_type === 'user.removed' ? { remote: null, roles: [] } : await this.fetch(subject);
      result = await this.apply(subject, snapshot, cursor, seenVersion);
      if (!result.outdated) break;
    }
    this.metrics.events.inc({ outcome: result.stale ? 'stale' : 'applied' });
    if (result.stale) return 'stale';
    this.logger.log(
      `Zitadel event ${event.event_type} for user ${subject} (seq ${cursor.sequence}): ` +
        (result.changed ? `now ${result.status}` : 'no change') +
        (result.terminated ? `, ${result.terminated} session(s) ended` : ''),
    );
    return 'applied';
  }

  /**
   * Reads Zitadel again and applies it as an event would: the local version is read first, and if an admin
   * write moves it before the apply, Zitadel is read once more. Reconciliation uses it for a user whose row
   * was written after the listing it came from.
   */
  async refresh(zitadelId: string): Promise<{ changed: boolean }> {
    for (let attempt = 1; ; attempt++) {
      const seenVersion = attempt < 3 ? await this.localVersion(zitadelId) : undefined;
      const result = await this.apply(zitadelId, await this.fetch(zitadelId), undefined, seenVersion);
      if (!result.outdated) return { changed: result.changed };
    }
  }

  /** Zitadel's current user and project roles; `remote` null when Zitadel does not know the id. */
  async fetch(zitadelId: string): Promise<ZitadelSnapshot> {
    const remote = await this.zitadel.getUser(zitadelId);
    return {
      remote,
      roles: remote ? await this.zitadel.getUserRoles(zitadelId, remote.orgId || undefined) : [],
    };
  }

  /**
   * One transaction: claim the event (if any), update the cached user, and end its sessions when it has
   * become blocked, so no token outlives the status change by even one request. With `seenVersion`
   * (the local version read before the snapshot), a user whose row has changed since is left alone and
   * the answer is `outdated`: the snapshot may predate that change.
   */
  async apply(
    zitadelId: string,
    snapshot: ZitadelSnapshot,
    cursor?: Cursor,
    seenVersion?: number | null,
    /** Reconciliation: when the snapshot was listed; a row written locally since then is outdated. */
    listedAt?: Date,
  ): Promise<{
    stale: boolean;
    outdated?: boolean;
    changed: boolean;
    status: UserStatus | null;
    terminated: number;
  }> {
    return this.dataSource.transaction(async (manager) => {
      // The user's row first, then the cursor: the order every writer of both takes them in (no deadlock).
      const rows: Array<{ version?: number; updated_at?: Date }> = await manager.query(
        'SELECT version, updated_at FROM users WHERE zitadel_id = $1 FOR UPDATE',
        [zitadelId],
      );
      if (
        (seenVersion !== undefined && (rows[0]?.version ?? null) !== seenVersion) ||
        (listedAt !== undefined && rows[0]?.updated_at !== undefined && rows[0].updated_at > listedAt)
      ) {
        return { stale: false, outdated: true, changed: false, status: null, terminated: 0 };
      }
      if (cursor && !(await this.claim(manager, cursor))) {
        return { stale: true, changed: false, status: null, terminated: 0 };
      }
      const result = await this.users.applyZitadelSnapshot(
        zitadelId,
        snapshot.remote,
        snapshot.roles,
        manager,
      );
      const status = result.user?.status ?? null;
      let terminated = 0;
      if (result.user && status && BLOCKED.has(status)) {
        terminated = await this.sessions.terminateAll(result.user.id, manager);
      }
      return { stale: false, changed: result.changed, status, terminated };
    });
  }

  private subjectOf(event: z.output<typeof eventSchema>): string | null {
    if (event.aggregateType === 'user' && USER_EVENT_TYPES.has(event.event_type)) return event.aggregateID;
    if (event.aggregateType === 'usergrant' && GRANT_EVENT_TYPES.has(event.event_type)) {
      const payload = event.event_payload as { userId?: unknown } | undefined;
      const userId = payload?.userId;
      return typeof userId === 'string' && /^[\w.@-]{1,200}$/.test(userId) ? userId : null;
    }
    return null;
  }

  private async localVersion(zitadelId: string): Promise<number | null> {
    const rows: Array<{ version?: number }> = await this.dataSource.query(
      'SELECT version FROM users WHERE zitadel_id = $1',
      [zitadelId],
    );
    return rows[0]?.version ?? null;
  }

  private async isStale(cursor: Cursor): Promise<boolean> {
    const rows: Array<{ sequence: string }> = await this.dataSource.query(
      `SELECT sequence FROM zitadel_event_cursors WHERE aggregate_type = $1 AND aggregate_id = $2`,
      [cursor.aggregateType, cursor.aggregateId],
    );
    return rows.length > 0 && BigInt(rows[0].sequence) >= BigInt(cursor.sequence);
  }

  /** Advances the aggregate's cursor if this event is newer; false for a replayed or older event. */
  private async claim(manager: EntityManager, cursor: Cursor): Promise<boolean> {
    const rows: unknown[] = await manager.query(
      `INSERT INTO zitadel_event_cursors (aggregate_type, aggregate_id, sequence)
       VALUES ($1, $2, $3)
       ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE
         SET sequence = EXCLUDED.sequence, updated_at = now()
         WHERE zitadel_event_cursors.sequence < EXCLUDED.sequence
       RETURNING sequence`,
      [cursor.aggregateType, cursor.aggregateId, cursor.sequence],
    );
    return rows.length > 0;
  }
}
