import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DataSource, EntityManager, Not } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { AuditAction, AuditChanges } from '../audit/entities/audit-event.entity.js';
import type { Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { assertIfMatch } from '../common/http/etag.js';
import type { AppConfig } from '../config/app-config.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { namesFromDisplayName, ZitadelClient, ZitadelError } from '../zitadel/zitadel.client.js';
import {
  ADMIN_ONLY_FIELDS,
  type CreateUserDto,
  type UpdatableField,
  type UpdateUserDto,
} from './dto/user-writes.dto.js';
import { User } from './entities/user.entity.js';
import { UsersService } from './users.service.js';

/** Who is asking, as far as a write needs to know. */
export interface Caller {
  actor: Actor;
  /** Holds `admin:users`: may change status and roles, and other users. */
  isAdmin: boolean;
}

/**
 * The writes on users. Each one runs in one transaction that locks the user's row: the If-Match check,
 * the call to Zitadel (which owns profile, state and roles, so it is written first: if it fails, nothing
 * changes here), the local change, the end of the user's sessions where access is withdrawn, and the
 * audit record commit together or not at all.
 */
@Injectable()
export class UserAdminService {
  private readonly logger = new Logger(UserAdminService.name);
  private readonly knownRoles: ReadonlySet<string>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly users: UsersService,
    private readonly zitadel: ZitadelClient,
    private readonly audit: AuditService,
    private readonly sessions: SessionsService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.knownRoles = new Set(Object.keys(config.get('auth', { infer: true }).rolePermissions));
  }

  async create(input: CreateUserDto, actor: Actor): Promise<User> {
    const roles = this.checkRoles(input.roles ?? ['user']);
    await this.users.requireEmailAndUsernameFree(input.email, input.username);
    const { userId: zitadelId } = await this.zitadel.addHumanUser({
      username: input.username,
      email: input.email,
      ...namesFromDisplayName(input.display_name),
      displayName: input.display_name,
      password: input.password,
      // An admin who sets the password vouches for the address; without one, Zitadel's invitation mail
      // proves it.
      emailVerification: input.password ? 'verified' : 'send_code',
    });
    await this.zitadel.setUserRoles(zitadelId, roles);
    const remote = await this.zitadel.getUser(zitadelId);
    if (!remote) throw ApiError.upstreamUnavailable('Zitadel did not return the user it just created');
    const user = await this.users.syncFromZitadel(remote, roles);
    await this.dataSource.transaction((manager) =>
      this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.created',
        changes: { status: { before: null, after: user.status }, roles: { before: null, after: roles } },
      }),
    );
    return user;
  }

  async update(
    id: string,
    input: UpdateUserDto,
    caller: Caller,
    ifMatch: string | undefined,
  ): Promise<UpdatableField[]> {
    const sent = (Object.keys(input) as UpdatableField[]).filter((field) => input[field] !== undefined);
    const adminFields = sent.filter((field) => (ADMIN_ONLY_FIELDS as readonly string[]).includes(field));
    if (!caller.isAdmin && adminFields.length) {
      throw ApiError.forbidden(`Only an administrator may change: ${adminFields.join(', ')}`);
    }
    if (!sent.length) {
      throw ApiError.validation([{ field: 'body', message: 'send at least one field to change' }]);
    }
    if (input.roles) this.checkRoles(input.roles);
    if (input.status && caller.actor.userId === id) {
      throw ApiError.forbidden('You cannot change your own status');
    }

    return this.dataSource.transaction(async (manager) => {
      const user = await this.lockUser(manager, id, ifMatch);
      const changes: AuditChanges = {};
      const note = (field: UpdatableField, before: unknown, after: unknown) => {
        if (JSON.stringify(before) !== JSON.stringify(after)) changes[field] = { before, after };
      };
      if (input.display_name !== undefined) note('display_name', user.displayName, input.display_name);
      if (input.avatar_url !== undefined) note('avatar_url', user.avatarUrl, input.avatar_url);
      if (input.roles) note('roles', user.roles, [...new Set(input.roles)].sort());
      if (input.status) note('status', user.status, input.status);
      if (changes.status && !['active', 'suspended', 'inactive'].includes(user.status)) {
        throw ApiError.conflict(`A ${user.status} user cannot be made ${input.status} here`);
      }

      if (changes.display_name) {
        await inZitadel(() =>
          this.zitadel.updateHumanUser(user.zitadelId, { displayName: input.display_name }),
        );
        user.displayName = input.display_name!;
      }
      if (changes.avatar_url) user.avatarUrl = input.avatar_url ?? null;
      if (changes.roles) {
        await inZitadel(() => this.zitadel.setUserRoles(user.zitadelId, changes.roles.after as string[]));
        user.roles = changes.roles.after as string[];
      }
      if (changes.status?.after === 'suspended') {
        await inZitadel(() => this.zitadel.deactivateUser(user.zitadelId));
        this.markSuspended(user, null, null);
      } else if (changes.status?.after === 'active') {
        await inZitadel(() => this.zitadel.reactivateUser(user.zitadelId));
        this.markActive(user);
      }
      await manager.save(user);
      if (changes.status?.after === 'suspended') await this.sessions.terminateAll(user.id, manager);

      if (Object.keys(changes).length) {
        await this.audit.record(manager, {
          actor: caller.actor,
          targetUserId: user.id,
          action: auditActionFor(changes),
          changes,
        });
      }
      return Object.keys(changes) as UpdatableField[];
    });
  }

  async suspend(
    id: string,
    input: { reason: string; until?: Date },
    actor: Actor,
    ifMatch: string | undefined,
  ): Promise<User> {
    if (actor.userId === id) throw ApiError.forbidden('You cannot suspend yourself');
    // ISO 8601 also has week, ordinal and compact forms that pass the DTO's check but not Date's parser.
    if (input.until && Number.isNaN(input.until.getTime())) {
      throw ApiError.validation([
        { field: 'until', message: 'until must be a date-time such as 2030-01-31T12:00:00Z' },
      ]);
    }
    if (input.until && input.until.getTime() <= Date.now()) {
      throw ApiError.validation([{ field: 'until', message: 'until must be in the future' }]);
    }
    return this.dataSource.transaction(async (manager) => {
      const user = await this.lockUser(manager, id, ifMatch);
      if (user.status === 'suspended') throw ApiError.conflict('The user is already suspended');
      const before = user.status;
      await inZitadel(() => this.zitadel.deactivateUser(user.zitadelId));
      this.markSuspended(user, input.reason, input.until ?? null);
      await manager.save(user);
      await this.sessions.terminateAll(user.id, manager);
      await this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.suspended',
        reason: input.reason,
        changes: {
          status: { before, after: 'suspended' },
          suspended_until: { before: null, after: user.suspendedUntil?.toISOString() ?? null },
        },
      });
      return user;
    });
  }

  async activate(id: string, actor: Actor, ifMatch: string | undefined): Promise<User> {
    return this.dataSource.transaction(async (manager) => {
      const user = await this.lockUser(manager, id, ifMatch);
      if (user.status === 'active') throw ApiError.conflict('The user is already active');
      if (user.status === 'pending_verification') {
        throw ApiError.conflict('The user has not verified their email address yet');
      }
      const before = user.status;
      await inZitadel(() => this.zitadel.reactivateUser(user.zitadelId));
      this.markActive(user);
      await manager.save(user);
      await this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.activated',
        changes: { status: { before, after: 'active' } },
      });
      return user;
    });
  }

  async delete(id: string, actor: Actor, ifMatch: string | undefined): Promise<User> {
    if (actor.userId === id) throw ApiError.forbidden('You cannot delete yourself');
    return this.dataSource.transaction(async (manager) => {
      const user = await this.lockUser(manager, id, ifMatch);
      const before = user.status;
      await inZitadel(() => this.zitadel.deleteUser(user.zitadelId));
      user.status = 'deleted';
      user.deletedAt = new Date();
      await manager.save(user);
      await this.sessions.terminateAll(user.id, manager);
      await this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.deleted',
        changes: { status: { before, after: 'deleted' } },
      });
      return user;
    });
  }

  /** Reactivates users whose suspension has run out; returns how many. Safe to run on every instance. */
  async endExpiredSuspensions(actor: Actor, batchSize = 100): Promise<number> {
    const due = await this.users.findSuspensionsEndedBy(new Date(), batchSize);
    let ended = 0;
    for (const { id } of due) {
      try {
        await this.activate(id, actor, undefined);
        ended++;
      } catch (error) {
        // Another instance got there first (409), or Zitadel is down: the next round retries.
        if (!(error instanceof ApiError && error.code === 'conflict')) {
          this.logger.warn({ err: error, userId: id }, 'Could not end an expired suspension');
        }
      }
    }
    return ended;
  }

  private async lockUser(manager: EntityManager, id: string, ifMatch: string | undefined): Promise<User> {
    const user = await manager.getRepository(User).findOne({
      where: { id, status: Not('deleted') },
      lock: { mode: 'pessimistic_write' },
    });
    if (!user) throw ApiError.userNotFound();
    assertIfMatch(ifMatch, user.version);
    return user;
  }

  private checkRoles(roles: string[]): string[] {
    const unknown = roles.filter((role) => !this.knownRoles.has(role));
    if (unknown.length) {
      throw ApiError.validation([
        {
          field: 'roles',
          message: `unknown role(s): ${unknown.join(', ')}; known: ${[...this.knownRoles].join(', ')}`,
        },
      ]);
    }
    return [...new Set(roles)].sort();
  }

  private markSuspended(user: User, reason: string | null, until: Date | null): void {
    user.status = 'suspended';
    user.suspensionReason = reason;
    user.suspendedAt = new Date();
    user.suspendedUntil = until;
  }

  private markActive(user: User): void {
    user.status = 'active';
    user.suspensionReason = null;
    user.suspendedAt = null;
    user.suspendedUntil = null;
  }
}

function auditActionFor(changes: AuditChanges): AuditAction {
  if (changes.status) return changes.status.after === 'suspended' ? 'user.suspended' : 'user.activated';
  if (changes.roles) return 'user.roles_changed';
  return 'user.updated';
}

/**
 * Zitadel's refusals of a state change (e.g. deactivating a user who never finished the invitation)
 * become 409 with our own words; unreachable and 5xx are already 503 from the client.
 */
async function inZitadel<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (
      error instanceof ZitadelError &&
      (error.kind === 'failed_precondition' || error.kind === 'not_found')
    ) {
      throw ApiError.conflict('Zitadel does not allow this change for the user in their current state');
    }
    throw error;
  }
}
