import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { CURSOR_SIGNER, type CursorSigner } from '../common/http/cursor-signer.js';
import type { AppConfig } from '../config/app-config.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from '../zitadel/zitadel-connection.js';
import type { ZitadelUser } from '../zitadel/zitadel.types.js';
import { poolQuery } from '../database/pool-query.js';
import { ChangeFeedService } from '../change-feed/change-feed.service.js';
import { CoherentCache } from '../change-feed/coherent-cache.js';
import type { UserSort } from './dto/list-users.dto.js';
import { User, type UserStatus } from './entities/user.entity.js';
import { decodeCursor, encodeCursor } from './user-cursor.js';
import { parametersOf, userListStatements, type UserListValues } from './user-list.sql.js';

export { uploadedAvatarUrl } from './avatar-url.js';

/**
 * `GET /api/users/me` and every `:id` route read a user by primary key; the SQL is written once (aliases
 * are the entity's property names) instead of being built by a query builder on every request.
 */
const FIND_BY_ID_SQL = `
  SELECT id, zitadel_id AS "zitadelId", org_id AS "orgId", username, email,
         pending_email AS "pendingEmail", display_name AS "displayName",
         avatar_url AS "avatarUrl", status, roles, last_login AS "lastLogin",
         suspension_reason AS "suspensionReason", suspended_at AS "suspendedAt",
         suspended_until AS "suspendedUntil", deleted_at AS "deletedAt", created_at AS "createdAt",
         updated_at AS "updatedAt", version
  FROM users WHERE id = $1 AND status <> 'deleted'`;
/** One page of `GET /api/users`: the users as a JSON array of UserSummaryDto, and what goes around it. */
export interface UserListPage {
  usersJson: string;
  total: number;
  totalExact: boolean;
  nextCursor: string | null;
}

export interface UserListQuery {
  /** The organization to list; null: every organization (instance-wide callers only). */
  orgId: string | null;
  status?: UserStatus;
  role?: string;
  /** With `role`: the role as held in this bot (its bot roles where set, else the organization roles). */
  botId?: string;
  search?: string;
  sort: UserSort;
  limit: number;
  offset: number;
  cursor?: string;
}

const copyOf = (user: User): User => Object.assign(new User(), user, { roles: [...user.roles] });

const escapeLike = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

@Injectable()
export class UsersService implements OnApplicationBootstrap {
  private readonly logger = new Logger(UsersService.name);
  private readonly searchCountLimit: number;
  /** The configured organization (ZITADEL_ORG_ID): registration's, and the fallback of rows that name none. */
  readonly defaultOrgId: string;
  /**
   * User rows for the hot reads (the caller's profile, a token's subject), by `id:<uuid>` and
   * `zitadel:<id>`, kept coherent by the change feed: any change of a user drops its entries on every
   * instance (see change-feed/). Writes and their precondition checks read the database, never this.
   */
  private readonly cached: CoherentCache<User>;

  constructor(
    @InjectRepository(User) private readonly users: Repository<User>,
    config: ConfigService<AppConfig, true>,
    @Inject(CURSOR_SIGNER) private readonly cursors: CursorSigner,
    feed: ChangeFeedService,
    @Inject(ZITADEL_CONNECTION) connection: ZitadelConnection,
  ) {
    this.searchCountLimit = config.get('users', { infer: true }).searchCountLimit;
    this.defaultOrgId = connection.orgId;
    const { maxEntries, maxAgeMs } = config.get('database', { infer: true }).cache;
    this.cached = new CoherentCache<User>(feed, {
      maxEntries,
      maxAgeMs,
      staleAfter: (table, ids) => {
        if (table !== 'users') return {};
        const users = new Set(ids);
        return { where: (user) => users.has(user.id) };
      },
    });
  }

  /**
   * Rows cached before organizations were recorded (the Organizations migration left them '') belong to
   * the configured organization until reconciliation says otherwise. An index lookup when there are none.
   */
  async onApplicationBootstrap(): Promise<void> {
    const result = await this.users
      .createQueryBuilder()
      .update(User)
      .set({ orgId: this.defaultOrgId })
      .where(`org_id = ''`)
      .execute();
    if (result.affected)
      this.logger.log(`${result.affected} user(s) assigned to organization ${this.defaultOrgId}`);
  }

  /**
   * The organization of a user, deleted ones included; null when there is no such user. What the access
   * guard compares with the caller's organization (another organization's users do not exist for it).
   */
  async orgOf(id: string): Promise<string | null> {
    // Mostly a cached user; only a deleted (or unknown) one costs a query.
    const user = await this.cached.load(`id:${id}`, () => this.findById(id));
    if (user) return user.orgId;
    const [row] = await this.users.query<{ org_id: string }[]>('SELECT org_id FROM users WHERE id = $1', [
      id,
    ]);
    return row?.org_id ?? null;
  }

  /** A user that has not been deleted; deleted users are gone from every read. */
  async findById(id: string): Promise<User | null> {
    const [row] = await this.users.query<Partial<User>[]>(FIND_BY_ID_SQL, [id]);
    return row ? Object.assign(new User(), row) : null;
  }

  /**
   * findById for reads that answer a GET: from the cache when it holds the user. A copy, so that no
   * caller can change the cached row.
   */
  async readById(id: string): Promise<User | null> {
    const user = await this.cached.load(`id:${id}`, () => this.findById(id));
    return user && copyOf(user);
  }

  async requireReadById(id: string): Promise<User> {
    const user = await this.readById(id);
    if (!user) throw ApiError.userNotFound();
    return user;
  }

  /** findByZitadelId for the token check of Zitadel access tokens: from the cache when it holds the user. */
  async readByZitadelId(zitadelId: string): Promise<User | null> {
    const user = await this.cached.load(`zitadel:${zitadelId}`, () => this.findByZitadelId(zitadelId));
    return user && copyOf(user);
  }

  /**
   * In the caller's transaction: whether the user exists and is not deleted, taking (when it does) the
   * transaction-level advisory lock `<lockName>:<id>` in the same statement. What a write to rows that
   * belong to a user (its settings) does first: one round trip for the check and the serialization.
   */
  async lockIfExists(manager: EntityManager, id: string, lockName: string): Promise<boolean> {
    const rows = await manager.query<unknown[]>(
      `SELECT pg_advisory_xact_lock(hashtextextended($2 || ':' || id::text, 0))
       FROM users WHERE id = $1 AND status <> 'deleted'`,
      [id, lockName],
    );
    return rows.length > 0;
  }

  /** Deleted users too: their audit trail stays readable. */
  existsIncludingDeleted(id: string): Promise<boolean> {
    return this.users.existsBy({ id });
  }

  async requireById(id: string): Promise<User> {
    const user = await this.findById(id);
    if (!user) throw ApiError.userNotFound();
    return user;
  }

  findByZitadelId(zitadelId: string): Promise<User | null> {
    return this.users.findOneBy({ zitadelId });
  }

  /**
   * 409 when a user that still exists has this email (confirmed, or waiting for its code) or this username
   * (case-insensitive).
   */
  async requireEmailAndUsernameFree(email: string, username: string): Promise<void> {
    if (await this.findByEmailOrUsername(email, username)) {
      throw ApiError.conflict('A user with this email or username already exists');
    }
  }

  findByEmailOrUsername(email: string, username: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('u')
      .where('u.deleted_at IS NULL')
      .andWhere(
        `(lower(u.email) = lower(:email) OR lower(u.pending_email) = lower(:email)
          OR lower(u.username) = lower(:username))`,
        { email, username },
      )
      .getOne();
  }

  /** Suspended users whose `until` has passed, oldest first. */
  findSuspensionsEndedBy(now: Date, limit: number): Promise<Pick<User, 'id'>[]> {
    return this.users
      .createQueryBuilder('u')
      .select('u.id')
      .where(`u.status = 'suspended'`)
      .andWhere('u.suspended_until <= :now', { now })
      .orderBy('u.suspended_until')
      .limit(limit)
      .getMany();
  }

  /**
   * One page of users and the total. Every filter and each sort order is served by an index (see the User
   * entity); with `cursor`, the page starts after the cursor's row (keyset pagination), so a deep page
   * costs what the first one does. Without a search the total is exact and read from `user_counts`; with
   * one it is counted, and counted only up to `searchCountLimit` (see user-list.sql.ts). The users come as
   * JSON text, UserSummaryDto written by PostgreSQL.
   */
  async list(query: UserListQuery): Promise<UserListPage> {
    const counted = query.search !== undefined || query.botId !== undefined;
    const after = query.cursor ? decodeCursor(this.cursors, query.cursor, query.sort) : undefined;
    const sql = userListStatements({
      status: query.status !== undefined,
      org: query.orgId !== null,
      bot: query.botId !== undefined,
      role: query.role !== undefined,
      search: query.search !== undefined,
      cursor: after !== undefined,
      sort: query.sort,
    });
    const values: UserListValues = {
      status: query.status,
      orgId: query.orgId ?? undefined,
      botId: query.botId,
      role: query.role,
      pattern: query.search === undefined ? undefined : `%${escapeLike(query.search.toLowerCase())}%`,
      term: query.search?.toLowerCase(),
      afterValue: after?.value,
      afterId: after?.id,
      offset: query.offset,
      limit: query.limit + 1,
      countLimit: this.searchCountLimit + 1,
    };
    const rows = await poolQuery<{ summary: string; id: string | null; cursor_value: string; total: number }>(
      this.users.manager.connection,
      { name: sql.name, text: sql.page, values: parametersOf(sql.parameters, values) },
    );
    const total = rows[0].total;
    // An empty page is one row with no user, which carried the total.
    if (rows[0].id === null) rows.length = 0;
    const hasMore = rows.length > query.limit;
    if (hasMore) rows.length = query.limit;
    const last = rows.at(-1);
    const totalExact = !counted || total <= this.searchCountLimit;
    return {
      usersJson: `[${rows.map((row) => row.summary).join(',')}]`,
      total: totalExact ? total : this.searchCountLimit,
      totalExact,
      nextCursor:
        hasMore && last?.id ? encodeCursor(this.cursors, query.sort, last.cursor_value, last.id) : null,
    };
  }

  /**
   * Refreshes the local cache of a Zitadel user (profile, state, project roles), creating the row on first
   * sight. Local decisions win where Zitadel has no say: a suspension stays until an admin lifts it.
   */
  async syncFromZitadel(remote: ZitadelUser, roles: string[]): Promise<User> {
    const existing = await this.findByZitadelId(remote.userId);
    const user = existing ?? this.users.create({ zitadelId: remote.userId });
    user.orgId = remote.orgId || existing?.orgId || this.defaultOrgId;
    user.username = remote.username;
    Object.assign(user, emailFields(remote, user.email, user.pendingEmail ?? null));
    user.displayName =
      remote.displayName || [remote.givenName, remote.familyName].filter(Boolean).join(' ') || null;
    // An avatar uploaded here wins over Zitadel's picture (see setAvatarUrl).
    if (remote.avatarUrl && !isUploadedAvatarUrl(user.avatarUrl)) user.avatarUrl = remote.avatarUrl;
    user.roles = roles.length ? [...new Set(roles)].sort() : ['user'];
    user.status = statusFromZitadel(withPendingEmail(remote, existing?.pendingEmail), existing?.status);
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

  /** The user whose confirmed address (`email`, not a pending one) this is, if any still exists. */
  findByEmail(email: string): Promise<User | null> {
    return this.users
      .createQueryBuilder('u')
      .where('u.deleted_at IS NULL')
      .andWhere('lower(u.email) = lower(:email)', { email })
      .getOne();
  }

  /** 409 unless no other user that still exists has this address, confirmed or pending. */
  async requireEmailFree(email: string, exceptUserId: string): Promise<void> {
    const taken = await this.users
      .createQueryBuilder('u')
      .where('u.deleted_at IS NULL')
      .andWhere('u.id <> :exceptUserId', { exceptUserId })
      .andWhere('(lower(u.email) = lower(:email) OR lower(u.pending_email) = lower(:email))', { email })
      .getExists();
    if (taken) throw ApiError.conflict('This email address is already in use');
  }

  /**
   * Records (or, with null, drops) the address a user waits to confirm. Not a profile change: the version
   * (ETag) and updated_at stay, so undoing it after Zitadel refused the address leaves the row as it was.
   */
  async setPendingEmail(id: string, email: string | null): Promise<void> {
    try {
      await this.users.query(`UPDATE users SET pending_email = $2 WHERE id = $1`, [id, email]);
    } catch (error) {
      const { code } = error as { code?: string; driverError?: { code?: string } };
      const driverCode = (error as { driverError?: { code?: string } }).driverError?.code ?? code;
      if (driverCode === '23505') throw ApiError.conflict('This email address is already in use');
      throw error;
    }
  }

  /**
   * Erasure (DELETE /api/users/me): the row stays as `deleted` so the audit trail keeps a target, but every
   * personal field is replaced by a placeholder derived from the id. Run in the caller's transaction, with
   * the user's sessions ended alongside.
   */
  async anonymise(id: string, manager: EntityManager): Promise<void> {
    await manager.getRepository(User).update(
      { id },
      {
        status: 'deleted',
        deletedAt: () => 'now()',
        username: `erased-${id}`,
        email: `erased-${id}@erased.invalid`,
        pendingEmail: null,
        displayName: null,
        avatarUrl: null,
        lastLogin: null,
        suspensionReason: null,
      },
    );
  }

  async recordLogin(userId: string): Promise<void> {
    await this.users.update({ id: userId }, { lastLogin: () => 'now()' });
  }

  /**
   * Points the profile at an avatar: the uploaded one (`uploadedAvatarUrl(id)`), an external URL, or
   * none. Pass a transaction's manager when it must change together with the avatar itself.
   */
  async setAvatarUrl(id: string, url: string | null, manager?: EntityManager): Promise<void> {
    const users = manager ? manager.getRepository(User) : this.users;
    await users.update({ id }, { avatarUrl: url });
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
        .values({ zitadelId, ...snapshotFields(remote, roles, undefined, this.defaultOrgId) })
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
      ? {
          ...snapshotFields(withPendingEmail(remote, row.pendingEmail), roles, row.status, row.orgId),
          ...emailFields(remote, row.email, row.pendingEmail),
        }
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

/**
 * The email columns as Zitadel's user dictates, given a pending change. Zitadel's SetEmail replaces the
 * address at once (unverified), so while the new address waits for its code Zitadel shows it unverified:
 * here the old, confirmed one stays until Zitadel says the new one is verified. Any other address (an admin
 * changed it in the console) wins and drops the pending change.
 */
function emailFields(
  remote: ZitadelUser,
  current: string | undefined,
  pending: string | null,
): Pick<User, 'email' | 'pendingEmail'> {
  const isPending = pending !== null && remote.email.toLowerCase() === pending.toLowerCase();
  if (isPending && !remote.emailVerified && current !== undefined)
    return { email: current, pendingEmail: pending };
  return { email: remote.email, pendingEmail: null };
}

/** While an email change waits for its code, the account is as verified as its old address was. */
function withPendingEmail(remote: ZitadelUser, pending: string | null | undefined): ZitadelUser {
  if (!pending || remote.emailVerified || remote.email.toLowerCase() !== pending.toLowerCase()) return remote;
  return { ...remote, emailVerified: true };
}

function isUploadedAvatarUrl(url: string | null): boolean {
  return url !== null && /^\/api\/users\/[0-9a-f-]{36}\/avatar$/.test(url);
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
  knownOrgId: string,
): Pick<User, 'orgId' | 'username' | 'email' | 'displayName' | 'roles' | 'status'> & { avatarUrl?: string } {
  return {
    orgId: remote.orgId || knownOrgId,
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
