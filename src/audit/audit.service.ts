import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import type { Actor } from '../common/actor.js';
import { AuditEvent, type AuditAction, type AuditChanges } from './entities/audit-event.entity.js';

/** Fields of an audit entry's changes that hold personal data (redacted on erasure). */
const PERSONAL_FIELDS = ['display_name', 'avatar_url', 'email', 'pending_email', 'username'] as const;

@Injectable()
export class AuditService {
  constructor(@InjectRepository(AuditEvent) private readonly events: Repository<AuditEvent>) {}

  /** Records an admin write through the caller's transaction, so it commits or rolls back with the change. */
  async record(
    manager: EntityManager,
    event: {
      actor: Actor;
      targetUserId: string;
      action: AuditAction;
      reason?: string | null;
      changes?: AuditChanges;
    },
  ): Promise<void> {
    const repository = manager.getRepository(AuditEvent);
    await repository.save(
      repository.create({
        actorUserId: event.actor.userId,
        actorZitadelId: event.actor.zitadelId,
        targetUserId: event.targetUserId,
        action: event.action,
        reason: event.reason ?? null,
        changes: event.changes ?? {},
        requestId: event.actor.requestId,
      }),
    );
  }

  /**
   * The newest `limit` events about the user, oldest first (the data export). Not the ones they made about
   * others (an administrator's): those hold other people's data.
   */
  async listAllAbout(userId: string, limit: number): Promise<AuditEvent[]> {
    const newest = await this.events
      .createQueryBuilder('e')
      .where('e.target_user_id = :userId', { userId })
      .orderBy('e.created_at', 'DESC')
      .addOrderBy('e.id', 'DESC')
      .limit(limit)
      .getMany();
    return newest.reverse();
  }

  /**
   * Erasure: the events about the user stay (who did what, when, to which account id), but the values of
   * personal fields in their changes, and the free-text reason, become `[erased]`.
   */
  async redact(manager: EntityManager, userId: string): Promise<number> {
    const keys = [...PERSONAL_FIELDS];
    const result = await manager.query<[unknown[], number]>(
      `UPDATE audit_events SET
         reason = CASE WHEN reason IS NULL THEN NULL ELSE '[erased]' END,
         changes = (
           SELECT coalesce(jsonb_object_agg(key, CASE WHEN key = ANY($2::text[])
             THEN jsonb_build_object('before', '[erased]', 'after', '[erased]') ELSE value END), '{}'::jsonb)
           FROM jsonb_each(changes))
       WHERE target_user_id = $1`,
      [userId, keys],
    );
    return result[1];
  }

  /** Newest first; the index on (target_user_id, created_at, id) serves both the page and the count. */
  async listForUser(
    targetUserId: string,
    page: { limit: number; offset: number },
  ): Promise<{ events: AuditEvent[]; total: number }> {
    const [events, total] = await this.events.findAndCount({
      where: { targetUserId },
      order: { createdAt: 'DESC', id: 'DESC' },
      take: page.limit,
      skip: page.offset,
    });
    return { events, total };
  }
}
