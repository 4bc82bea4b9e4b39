import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Not, Repository } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import type { ZitadelUser } from '../zitadel/zitadel.types.js';
import { User, type UserStatus } from './entities/user.entity.js';

@Injectable()
export class UsersService {
  constructor(@InjectRepository(User) private readonly users: Repository<User>) {}

  /** A user that has not been deleted; deleted users are gone from every read. */
  findById(id: string): Promise<User | null> {
    return this.users.findOneBy({ id, status: Not('deleted') });
  }

  async requireById(id: string): Promise<User> {
    const user = await this.findById(id);
    if (!user) throw ApiError.userNotFound();
    return user;
  }

  findByZitadelId(zitadelId: string): Promise<User | null> {
    return this.users.findOneBy({ zitadelId });
  }

  findByEmailOrUsername(email: string, username: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('u')
      .where('u.deleted_at IS NULL')
      .andWhere('(lower(u.email) = lower(:email) OR lower(u.username) = lower(:username))', {
        email,
        username,
      })
      .getOne();
  }

  /**
   * Refreshes the local cache of a Zitadel user (profile, state, project roles), creating the row on first
   * sight. Local decisions win where Zitadel has no say: a suspension stays until an admin lifts it.
   */
  async syncFromZitadel(remote: ZitadelUser, roles: string[]): Promise<User> {
    const existing = await this.findByZitadelId(remote.userId);
    const user = existing ?? this.users.create({ zitadelId: remote.userId });
    user.username = remote.username;
    user.email = remote.email;
    user.displayName =
      remote.displayName || [remote.givenName, remote.familyName].filter(Boolean).join(' ') || null;
    if (remote.avatarUrl) user.avatarUrl = remote.avatarUrl;
    user.roles = roles.length ? [...new Set(roles)].sort() : ['user'];
    user.status = statusFromZitadel(remote, existing?.status);
    try {
      return await this.users.save(user);
    } catch (error) {
      // A Zitadel event may have created the row between our read and this insert: update that one.
      const code = (error as { driverError?: { code?: string } }).driverError?.code;
      if (!existing && code === '23505' && (await this.findByZitadelId(remote.userId))) {
        return this.syncFromZitadel(remote, roles);
      }
      throw error;
    }
  }

  /** A user whose Zitadel account is gone: keep the row for the audit trail, hide it everywhere else. */
  async markDeleted(user: User): Promise<void> {
    if (user.status === 'deleted') return;
    user.status = 'deleted';
    user.deletedAt = new Date();
    await this.users.save(user);
  }

  async recordLogin(userId: string): Promise<void> {
    await this.users.update({ id: userId }, { lastLogin: () => 'now()' });
  }

  async activate(userId: string): Promise<void> {
    await this.users.update({ id: userId }, { status: 'active' });
  }

  /**
   * Live sync with Zitadel (webhooks and reconciliation): brings the cached row of `zitadelId` in line with
   * Zitadel's current state, inside the caller's transaction, row-locked so that concurrent events for one
   * user apply one after the other. `remote` null means Zitadel no longer knows the user: the row is kept
   * as deleted. A user Zitadel knows but we do not yet is created (never a duplicate: ON CONFLICT). Writes
   * only when something differs. Unlike syncFromZitadel, a lock in Zitadel blocks the user here too
   * (`inactive`), since this runs outside a login, where the password check would have refused them.
   */
  async applyZitadelSnapshot(
    zitadelId: string,
    remote: ZitadelUser | null,
    roles: string[],
    manager: EntityManager,
  ): Promise<ZitadelSnapshotResult> {
    const repository = manager.getRepository(User);
    const lockRow = () => repository.findOne({ where: { zitadelId }, lock: { mode: 'pessimistic_write' } });
    let user = await lockRow();
    if (!user && !remote) return { user: null, before: null, changed: false };
    if (!user && remote) {
      const inserted = await repository
        .createQueryBuilder()
        .insert()
        .into(User)
        .values({ zitadelId, ...snapshotFields(remote, roles, undefined) })
        .orIgnore()
        .returning(['id'])
        .execute();
      user = await lockRow();
      // Still none: the insert lost to another user holding the same email or username.
      if (!user) return { user: null, before: null, changed: false };
      if ((inserted.raw as unknown[]).length) return { user, before: null, changed: true };
    }
    const row = user!;
    const before = row.status;
    const wanted: Partial<User> = remote
      ? snapshotFields(remote, roles, row.status)
      : { status: 'deleted', deletedAt: row.deletedAt ?? new Date() };
    if (!remote && row.status === 'deleted') return { user: row, before, changed: false };
    const changed = Object.entries(wanted).some(
      ([key, value]) => JSON.stringify(row[key as keyof User]) !== JSON.stringify(value),
    );
    if (!changed) return { user: row, before, changed: false };
    Object.assign(row, wanted);
    return { user: await repository.save(row), before, changed: true };
  }

  /**
   * Zitadel ids of the users that are not deleted and were cached before `createdBefore`, a page at a time
   * (reconciliation looks for users gone from Zitadel; rows newer than its listing are not its business).
   */
  async listZitadelIds(afterZitadelId: string | null, limit: number, createdBefore: Date): Promise<string[]> {
    const query = this.users
      .createQueryBuilder('u')
      .select('u.zitadel_id', 'zitadel_id')
      .where(`u.status <> 'deleted'`)
      .andWhere('u.created_at < :createdBefore', { createdBefore })
      .orderBy('u.zitadel_id', 'ASC')
      .limit(limit);
    if (afterZitadelId !== null) query.andWhere('u.zitadel_id > :after', { after: afterZitadelId });
    const rows = await query.getRawMany<{ zitadel_id: string }>();
    return rows.map((r) => r.zitadel_id);
  }
}

export interface ZitadelSnapshotResult {
  /** null when there is no local row (and none was created). */
  user: User | null;
  /** The status before the change; null for a row created now. */
  before: UserStatus | null;
  changed: boolean;
}

/** The cached fields as Zitadel's state dictates, local decisions (suspension, deletion) kept. */
function snapshotFields(
  remote: ZitadelUser,
  roles: string[],
  current: UserStatus | undefined,
): Pick<User, 'username' | 'email' | 'displayName' | 'roles' | 'status'> & { avatarUrl?: string } {
  return {
    username: remote.username,
    email: remote.email,
    displayName:
      remote.displayName || [remote.givenName, remote.familyName].filter(Boolean).join(' ') || null,
    ...(remote.avatarUrl ? { avatarUrl: remote.avatarUrl } : {}),
    roles: roles.length ? [...new Set(roles)].sort() : ['user'],
    status:
      remote.state === 'USER_STATE_LOCKED' && current !== 'deleted' && current !== 'suspended'
        ? 'inactive'
        : statusFromZitadel(remote, current),
  };
}

function statusFromZitadel(remote: ZitadelUser, current: UserStatus | undefined): UserStatus {
  if (current === 'deleted' || remote.state === 'USER_STATE_DELETED') return 'deleted';
  if (current === 'suspended') return 'suspended';
  if (remote.state === 'USER_STATE_INACTIVE') return 'inactive';
  if (!remote.emailVerified) return 'pending_verification';
  return 'active';
}
