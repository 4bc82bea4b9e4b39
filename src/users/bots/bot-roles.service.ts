import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Not, Repository, type EntityManager } from 'typeorm';
import { AuditService } from '../../audit/audit.service.js';
import type { Actor } from '../../common/actor.js';
import { ApiError } from '../../common/errors/api-error.js';
import { UserBotRole } from '../entities/user-bot-role.entity.js';
import { MAX_BOTS_LISTED } from './bot-roles.dto.js';
import { User } from '../entities/user.entity.js';

/**
 * Roles per bot, kept in `user_bot_roles` (the one source of truth; docs/identity.md). Each change locks
 * the user's row (so a concurrent delete cannot slip between), writes, and records the audit event in one
 * transaction. Organization scoping is the access guard's: another organization's user is a 404 there.
 */
@Injectable()
export class BotRolesService {
  constructor(
    private readonly dataSource: DataSource,
    @InjectRepository(UserBotRole) private readonly botRoles: Repository<UserBotRole>,
    private readonly audit: AuditService,
  ) {}

  /** The user's bot roles by bot id; 404 for a user that does not exist (or is deleted). */
  async list(userId: string): Promise<UserBotRole[]> {
    const exists = await this.dataSource.getRepository(User).existsBy({ id: userId, status: Not('deleted') });
    if (!exists) throw ApiError.userNotFound();
    return this.botRoles.find({ where: { userId }, order: { botId: 'ASC' }, take: MAX_BOTS_LISTED });
  }

  async set(userId: string, botId: string, roles: string[], actor: Actor): Promise<UserBotRole> {
    const wanted = [...new Set(roles)].sort();
    return this.dataSource.transaction(async (manager) => {
      await lockUser(manager, userId);
      const repository = manager.getRepository(UserBotRole);
      const current = await repository.findOneBy({ userId, botId });
      if (current && sameRoles(current.roles, wanted)) return current;
      const saved = await repository.save(
        current
          ? Object.assign(current, { roles: wanted })
          : repository.create({ userId, botId, roles: wanted }),
      );
      await this.audit.record(manager, {
        actor,
        targetUserId: userId,
        action: 'user.bot_roles_changed',
        changes: { [`bots.${botId}.roles`]: { before: current?.roles ?? null, after: wanted } },
      });
      return saved;
    });
  }

  /** 404 `not_found` when the user holds no roles in this bot. */
  async remove(userId: string, botId: string, actor: Actor): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      await lockUser(manager, userId);
      const repository = manager.getRepository(UserBotRole);
      const current = await repository.findOneBy({ userId, botId });
      if (!current) throw new ApiError('not_found', 'The user holds no roles in this bot');
      await repository.delete({ userId, botId });
      await this.audit.record(manager, {
        actor,
        targetUserId: userId,
        action: 'user.bot_roles_changed',
        changes: { [`bots.${botId}.roles`]: { before: current.roles, after: null } },
      });
    });
  }
}

async function lockUser(manager: EntityManager, userId: string): Promise<void> {
  const rows = await manager.query<unknown[]>(
    `SELECT 1 FROM users WHERE id = $1 AND status <> 'deleted' FOR UPDATE`,
    [userId],
  );
  if (!rows.length) throw ApiError.userNotFound();
}

function sameRoles(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((role, i) => role === b[i]);
}
