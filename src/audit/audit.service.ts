import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import type { Actor } from '../common/actor.js';
import { AuditEvent, type AuditAction, type AuditChanges } from './entities/audit-event.entity.js';

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
