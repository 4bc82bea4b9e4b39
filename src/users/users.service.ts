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
    // An avatar uploaded here wins over Zitadel's picture (see setAvatarUrl).
    if (remote.avatarUrl && !isUploadedAvatarUrl(user.avatarUrl)) user.avatarUrl = remote.avatarUrl;
    user.roles = roles.length ? [...new Set(roles)].sort() : ['user'];
    user.status = statusFromZitadel(remote, existing?.status);
    return this.users.save(user);
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
   * Points the profile at an avatar: the uploaded one (`uploadedAvatarUrl(id)`), an external URL, or
   * none. Pass a transaction's manager when it must change together with the avatar itself.
   */
  async setAvatarUrl(id: string, url: string | null, manager?: EntityManager): Promise<void> {
    const users = manager ? manager.getRepository(User) : this.users;
    await users.update({ id }, { avatarUrl: url });
  }
}

/** Where an avatar uploaded to this service is served (`GET /api/users/:id/avatar`). */
export function uploadedAvatarUrl(userId: string): string {
  return `/api/users/${userId}/avatar`;
}

function isUploadedAvatarUrl(url: string | null): boolean {
  return url !== null && /^\/api\/users\/[0-9a-f-]{36}\/avatar$/.test(url);
}

function statusFromZitadel(remote: ZitadelUser, current: UserStatus | undefined): UserStatus {
  if (current === 'deleted' || remote.state === 'USER_STATE_DELETED') return 'deleted';
  if (current === 'suspended') return 'suspended';
  if (remote.state === 'USER_STATE_INACTIVE') return 'inactive';
  if (!remote.emailVerified) return 'pending_verification';
  return 'active';
}
