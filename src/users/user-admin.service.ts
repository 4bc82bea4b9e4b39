import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DataSource, EntityManager, Not } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { AuditAction, AuditChanges } from '../audit/entities/audit-event.entity.js';
import type { Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { assertIfMatch } from '../common/http/etag.js';
import { INSTANCE_PERMISSIONS, type AppConfig } from '../config/app-config.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { PasswordPolicyService } from '../zitadel/password-policy.service.js';
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
  /** Holds `iam:users`: may act in every organization, and grant roles that carry instance permissions. */
  instanceWide: boolean;
  /** The caller's organization, where users they create go unless they are instance-wide. */
  orgId: string;
}

/** How long a write may wait on Zitadel before its lease on the user runs out (retries and backoff included). */
export const WRITE_LEASE_SECONDS = 60;
/** How long a write waits for another write's lease on the same user before it answers 409. */
const LEASE_WAIT_MS = 3_000;

/** What one admin write does: an optional call to Zitadel, then the local change, given the locked row. */
interface PlannedWrite<T> {
  remote?: () => Promise<unknown>;
  local: (manager: EntityManager, user: User) => Promise<T>;
  /**
   * The write removes the user: its local step also runs on a row already marked deleted, which Zitadel's
   * `user.removed` event for this very removal may have done while Zitadel's answer was on its way.
   */
  removes?: true;
}

/**
 * The writes on users. Zitadel owns profile, state and roles, so it is written first: if it fails, nothing
 * changes here. No database connection or row lock is held while Zitadel answers (a hanging Zitadel must
 * not park the pool under every other request), so each write runs in three steps (withWriteLease):
 * 1. claim: a short UPDATE takes the user's write lease, after the If-Match check; a write that finds the
 *    lease taken gets 409, it never waits;
 * 2. Zitadel is called, outside any transaction;
 * 3. apply: one transaction locks the row, applies the change, releases the lease, ends the user's sessions
 *    where access is withdrawn, and writes the audit record, together or not at all.
 * If Zitadel refuses or fails, the lease is released and nothing changed here. If the process dies between
 * 2 and 3, the lease runs out after WRITE_LEASE_SECONDS and Zitadel's event (or reconciliation) brings the
 * change here.
 */
@Injectable()
export class UserAdminService {
  private readonly logger = new Logger(UserAdminService.name);
  private readonly knownRoles: ReadonlySet<string>;
  /** Roles whose holders get an instance-wide permission: only an instance-wide caller grants them. */
  private readonly instanceRoles: ReadonlySet<string>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly users: UsersService,
    private readonly zitadel: ZitadelClient,
    private readonly audit: AuditService,
    private readonly sessions: SessionsService,
    private readonly passwords: PasswordPolicyService,
    config: ConfigService<AppConfig, true>,
  ) {
    const rolePermissions = config.get('auth', { infer: true }).rolePermissions;
    this.knownRoles = new Set(Object.keys(rolePermissions));
    this.instanceRoles = new Set(
      Object.entries(rolePermissions)
        .filter(([, permissions]) => permissions.some((p) => INSTANCE_PERMISSIONS.includes(p)))
        .map(([role]) => role),
    );
  }

  /**
   * In the caller's organization, or with `iam:users` in the one `org_id` names. Another organization
   * without `iam:users` is refused (403) before anything is written.
   */
  async create(input: CreateUserDto, caller: Caller): Promise<User> {
    const { actor } = caller;
    if (input.org_id !== undefined && input.org_id !== caller.orgId && !caller.instanceWide) {
      throw ApiError.forbidden('Creating a user in another organization requires the iam:users permission');
    }
    const orgId = input.org_id ?? caller.orgId;
    const roles = this.checkRoles(input.roles ?? ['user'], caller);
    if (input.password !== undefined) await this.passwords.assertAcceptable('password', input.password);
    await this.users.requireEmailAndUsernameFree(input.email, input.username);
    const { userId: zitadelId } = await this.zitadel.addHumanUser({
      orgId,
      username: input.username,
      email: input.email,
      ...namesFromDisplayName(input.display_name),
      displayName: input.display_name,
      password: input.password,
      // An admin who sets the password vouches for the address; without one, Zitadel's invitation mail
      // proves it.
      emailVerification: input.password ? 'verified' : 'send_code',
    });
    await this.zitadel.setUserRoles(zitadelId, roles, orgId);
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
    if (input.roles) this.checkRoles(input.roles, caller);
    if (input.status && caller.actor.userId === id) {
      throw ApiError.forbidden('You cannot change your own status');
    }

    return this.withWriteLease(id, ifMatch, (user) => {
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
      // An avatar URL lives here only: such a write needs no call to Zitadel and no lease.
      const callsZitadel = Boolean(changes.display_name || changes.roles || changes.status);
      return {
        remote: !callsZitadel
          ? undefined
          : async () => {
              if (changes.display_name) {
                await this.zitadel.updateHumanUser(user.zitadelId, { displayName: input.display_name });
              }
              if (changes.roles)
                await this.zitadel.setUserRoles(user.zitadelId, changes.roles.after as string[], user.orgId);
              if (changes.status?.after === 'suspended') await this.zitadel.deactivateUser(user.zitadelId);
              else if (changes.status?.after === 'active') await this.zitadel.reactivateUser(user.zitadelId);
            },
        local: async (manager, current) => {
          if (changes.display_name) current.displayName = input.display_name!;
          if (changes.avatar_url) current.avatarUrl = input.avatar_url ?? null;
          if (changes.roles) current.roles = changes.roles.after as string[];
          if (changes.status?.after === 'suspended') this.markSuspended(current, null, null);
          else if (changes.status?.after === 'active') this.markActive(current);
          await manager.save(current);
          if (changes.status?.after === 'suspended') await this.sessions.terminateAll(current.id, manager);
          if (Object.keys(changes).length) {
            await this.audit.record(manager, {
              actor: caller.actor,
              targetUserId: current.id,
              action: auditActionFor(changes),
              changes,
            });
          }
          return Object.keys(changes) as UpdatableField[];
        },
      };
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
    return this.withWriteLease(id, ifMatch, (user) => {
      if (user.status === 'suspended') throw ApiError.conflict('The user is already suspended');
      const before = user.status;
      return {
        remote: () => this.zitadel.deactivateUser(user.zitadelId),
        local: async (manager, current) => {
          this.markSuspended(current, input.reason, input.until ?? null);
          await manager.save(current);
          await this.sessions.terminateAll(current.id, manager);
          await this.audit.record(manager, {
            actor,
            targetUserId: current.id,
            action: 'user.suspended',
            reason: input.reason,
            changes: {
              status: { before, after: 'suspended' },
              suspended_until: { before: null, after: current.suspendedUntil?.toISOString() ?? null },
            },
          });
          return current;
        },
      };
    });
  }

  async activate(id: string, actor: Actor, ifMatch: string | undefined): Promise<User> {
    return this.withWriteLease(id, ifMatch, (user) => {
      if (user.status === 'active') throw ApiError.conflict('The user is already active');
      if (user.status === 'pending_verification') {
        throw ApiError.conflict('The user has not verified their email address yet');
      }
      const before = user.status;
      return {
        remote: () => this.zitadel.reactivateUser(user.zitadelId),
        local: async (manager, current) => {
          this.markActive(current);
          await manager.save(current);
          await this.audit.record(manager, {
            actor,
            targetUserId: current.id,
            action: 'user.activated',
            changes: { status: { before, after: 'active' } },
          });
          return current;
        },
      };
    });
  }

  async delete(id: string, actor: Actor, ifMatch: string | undefined): Promise<User> {
    if (actor.userId === id) throw ApiError.forbidden('You cannot delete yourself');
    return this.withWriteLease(id, ifMatch, (user) => {
      const before = user.status;
      return {
        remote: () => this.zitadel.deleteUser(user.zitadelId),
        removes: true,
        local: async (manager, current) => {
          current.status = 'deleted';
          // Kept when Zitadel's event for this removal got here first.
          current.deletedAt ??= new Date();
          await manager.save(current);
          await this.sessions.terminateAll(current.id, manager);
          await this.audit.record(manager, {
            actor,
            targetUserId: current.id,
            action: 'user.deleted',
            changes: { status: { before, after: 'deleted' } },
          });
          return current;
        },
      };
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

  /**
   * The three steps described on the class. `plan` sees the user as read and may refuse (throw). A write
   * that calls no Zitadel API (an avatar URL) needs no lease: it runs in one transaction under the row lock.
   */
  private async withWriteLease<T>(
    id: string,
    ifMatch: string | undefined,
    plan: (user: User) => PlannedWrite<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const user = await this.dataSource
        .getRepository(User)
        .findOne({ where: { id, status: Not('deleted') } });
      if (!user) throw ApiError.userNotFound();
      assertIfMatch(ifMatch, user.version);
      const write = plan(user);
      if (!write.remote) {
        const result = await this.dataSource.transaction(async (manager) => {
          const current = await this.lockedUser(manager, id);
          // Changed since it was planned against (an event from Zitadel): plan again on the new state.
          return current.version === user.version ? { value: await write.local(manager, current) } : null;
        });
        if (result) return result.value;
      } else {
        const lease = await this.claim(id, user.version);
        if (lease) return this.runLeased(id, lease, write);
      }
      if (attempt >= 5) throw ApiError.conflict('The user changed while this change was prepared; try again');
    }
  }

  private async runLeased<T>(id: string, lease: Date, write: PlannedWrite<T>): Promise<T> {
    try {
      await inZitadel(write.remote!);
      return await this.dataSource.transaction(async (manager) => {
        const current = await this.lockedUser(manager, id, write.removes);
        await manager.query('UPDATE users SET write_lease_until = NULL WHERE id = $1', [id]);
        return write.local(manager, current);
      });
    } catch (error) {
      // After a failed apply Zitadel has the change; its event or reconciliation brings it here later.
      await this.releaseLease(id, lease);
      throw error;
    }
  }

  /**
   * Takes the user's write lease if the user is still at `version` and no other write holds it. Returns
   * the lease (its expiry, which also identifies it), or null when the version moved on (the caller plans
   * again, so a second concurrent write applies after the first or fails its If-Match). While another
   * write holds the lease this one waits, holding no connection, up to LEASE_WAIT_MS, then answers 409.
   */
  private async claim(id: string, version: number): Promise<Date | null> {
    const waitUntil = Date.now() + LEASE_WAIT_MS;
    for (let delayMs = 25; ; delayMs = Math.min(delayMs * 2, 200)) {
      const [rows] = await this.dataSource.query<[Array<{ until: Date }>, number]>(
        // Milliseconds, as the Date we keep of it: the expiry identifies the lease when it is released.
        `UPDATE users
            SET write_lease_until = date_trunc('milliseconds', clock_timestamp() + make_interval(secs => $3))
          WHERE id = $1 AND version = $2 AND status <> 'deleted'
            AND (write_lease_until IS NULL OR write_lease_until < now())
          RETURNING write_lease_until AS until`,
        [id, version, WRITE_LEASE_SECONDS],
      );
      if (rows.length) return rows[0].until;
      const [row] = await this.dataSource.query<Array<{ version: number; leased: boolean }>>(
        `SELECT version, coalesce(write_lease_until > now(), false) AS leased
           FROM users WHERE id = $1 AND status <> 'deleted'`,
        [id],
      );
      if (!row) throw ApiError.userNotFound();
      if (row.version !== version) return null;
      if (!row.leased) continue;
      if (Date.now() + delayMs > waitUntil) {
        throw ApiError.conflict('Another change to this user is in progress; try again in a moment');
      }
      await sleep(delayMs);
    }
  }

  /**
   * Gives the lease back, retrying in the background while the database is unreachable so that a blip does
   * not block the user's writes until the lease runs out. Only our own lease (by its expiry) is cleared.
   */
  private async releaseLease(id: string, lease: Date): Promise<void> {
    const release = () =>
      this.dataSource.query(
        'UPDATE users SET write_lease_until = NULL WHERE id = $1 AND write_lease_until = $2',
        [id, lease],
      );
    try {
      await release();
    } catch {
      void (async () => {
        for (let delayMs = 250; Date.now() < lease.getTime(); delayMs = Math.min(delayMs * 2, 5_000)) {
          await sleep(delayMs);
          if (
            await release().then(
              () => true,
              () => false,
            )
          )
            return;
        }
      })();
    }
  }

  private async lockedUser(manager: EntityManager, id: string, includeDeleted = false): Promise<User> {
    const user = await manager.getRepository(User).findOne({
      where: includeDeleted ? { id } : { id, status: Not('deleted') },
      lock: { mode: 'pessimistic_write' },
    });
    if (!user) throw ApiError.userNotFound();
    return user;
  }

  private checkRoles(roles: string[], caller: Pick<Caller, 'instanceWide'>): string[] {
    const unknown = roles.filter((role) => !this.knownRoles.has(role));
    if (unknown.length) {
      throw ApiError.validation([
        {
          field: 'roles',
          message: `unknown role(s): ${unknown.join(', ')}; known: ${[...this.knownRoles].join(', ')}`,
        },
      ]);
    }
    // An organization admin must not be able to make anyone (themself included) instance-wide.
    const instance = roles.filter((role) => this.instanceRoles.has(role));
    if (instance.length && !caller.instanceWide) {
      throw ApiError.forbidden(`Only a caller with iam:users may grant: ${instance.join(', ')}`);
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
