import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository, SelectQueryBuilder } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { CURSOR_SIGNER, type CursorSigner } from '../common/http/cursor-signer.js';
import type { AppConfig } from '../config/app-config.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from '../zitadel/zitadel-connection.js';
import type { ZitadelUser } from '../zitadel/zitadel.types.js';
import { ChangeFeedService } from '../change-feed/change-feed.service.js';
import { CoherentCache } from '../change-feed/coherent-cache.js';
import type { UserSort } from './dto/list-users.dto.js';
import { UserBotRole } from './entities/user-bot-role.entity.js';
import { User, type UserStatus } from './entities/user.entity.js';
import { decodeCursor, encodeCursor } from './user-cursor.js';

export { uploadedAvatarUrl } from './avatar-url.js';

/**
 * `GET /api/users/me` and every `:id` route read a user by primary key; the SQL is written once (aliases
 * are the entity's property names) instead of being built by a query builder on every request.
 */
const FIND_BY_ID_SQL = `
  SELECT id, zitadel_id AS "zitadelId", org_id AS "orgId", username, email, display_name AS "displayName",
         avatar_url AS "avatarUrl", status, roles, last_login AS "lastLogin",
         suspension_reason AS "suspensionReason", suspended_at AS "suspendedAt",
         suspended_until AS "suspendedUntil", deleted_at AS "deletedAt", created_at AS "createdAt",
         updated_at AS "updatedAt", version
  FROM users WHERE id = $1 AND status <> 'deleted'`;
/** What a list shows of each user. */
export type UserSummary = Pick<
  User,
  'id' | 'username' | 'email' | 'displayName' | 'status' | 'roles' | 'createdAt'
>;
const SUMMARY_COLUMNS = [
  ['username', 'username'],
  ['email', 'email'],
  ['displayName', 'display_name'],
  ['status', 'status'],
  ['roles', 'roles'],
  ['createdAt', 'created_at'],
] as const satisfies [Exclude<keyof UserSummary, 'id'>, string][];
const SORT_COLUMNS = { created_at: 'u.created_at', username: 'u.username', email: 'u.email' } as const;

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

  /** 409 when a user that still exists has this email or username (case-insensitive). */
  async requireEmailAndUsernameFree(email: string, username: string): Promise<void> {
    if (await this.findByEmailOrUsername(email, username)) {
      throw ApiError.conflict('A user with this email or username already exists');
    }
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
   * one it is counted, and counted only up to `searchCountLimit` (see countSearchMatches).
   */
  async list(
    query: UserListQuery,
  ): Promise<{ users: UserSummary[]; total: number; totalExact: boolean; nextCursor: string | null }> {
    const filtered = this.users.createQueryBuilder('u');
    if (query.status) filtered.where('u.status = :status', { status: query.status });
    else filtered.where(`u.status <> 'deleted'`);
    // Leads every list index (see the User entity): a list inside one organization reads only its rows.
    if (query.orgId !== null) filtered.andWhere('u.org_id = :orgId', { orgId: query.orgId });
    if (query.botId !== undefined) {
      // The roles a user holds in the bot: its bot roles where set, else the organization roles.
      filtered.leftJoin(UserBotRole, 'b', 'b.user_id = u.id AND b.bot_id = :botId', {
        botId: query.botId,
      });
      if (query.role)
        filtered.andWhere('coalesce(b.roles, u.roles) @> ARRAY[:role]::text[]', { role: query.role });
      else filtered.andWhere('b.user_id IS NOT NULL');
    } else if (query.role) filtered.andWhere('u.roles @> ARRAY[:role]::text[]', { role: query.role });
    if (query.search) {
      // search_text is lower-cased by PostgreSQL (see the UserSearchText migration), trigram-indexed.
      filtered.andWhere('u.search_text LIKE :pattern', {
        pattern: `%${escapeLike(query.search.toLowerCase())}%`,
      });
    }
    // Bot roles have no counters: a bot filter is counted like a search.
    const counted =
      query.search || query.botId !== undefined
        ? this.countSearchMatches(filtered.clone())
        : this.countByStatusAndRole(query.orgId, query.status, query.role);

    const descending = query.sort.startsWith('-');
    const key = query.sort.replace(/^-/, '') as keyof typeof SORT_COLUMNS;
    const column = SORT_COLUMNS[key];
    const direction = descending ? 'DESC' : 'ASC';
    const page = filtered.clone();
    if (query.cursor) {
      const after = decodeCursor(this.cursors, query.cursor, query.sort);
      page.andWhere(`(${column}, u.id) ${descending ? '<' : '>'} (:afterValue, :afterId)`, {
        afterValue: after.value,
        afterId: after.id,
      });
    }
    // Only the columns a list shows, as plain rows: a page of 100 full entities spent more CPU in
    // TypeORM's hydration and in parsing five unused timestamps per row than in everything else.
    page.select('u.id', 'id');
    for (const [property, name] of SUMMARY_COLUMNS) page.addSelect(`u.${name}`, property);
    // The sort value as text keeps created_at's microseconds, which a JavaScript Date would drop.
    page
      .addSelect(`${column}::text`, 'cursor_value')
      .orderBy(column, direction)
      .addOrderBy('u.id', direction)
      .offset(query.offset)
      .limit(query.limit + 1);
    const [rows, total] = await Promise.all([
      page.getRawMany<UserSummary & { cursor_value: string }>(),
      counted,
    ]);
    const hasMore = rows.length > query.limit;
    const users = rows.slice(0, query.limit);
    const last = users.at(-1);
    const totalExact = (!query.search && query.botId === undefined) || total <= this.searchCountLimit;
    return {
      users,
      total: totalExact ? total : this.searchCountLimit,
      totalExact,
      nextCursor: hasMore && last ? encodeCursor(this.cursors, query.sort, last.cursor_value, last.id) : null,
    };
  }

  /**
   * The exact number of users of an organization (every one when null) with a status (any but deleted
   * when none) and a role (any when none), read from the `user_counts` table that triggers keep in step
   * with `users` (see the UserCounts and Organizations migrations).
   */
  private async countByStatusAndRole(
    orgId: string | null,
    status: UserStatus | undefined,
    role: string | undefined,
  ) {
    // One organization: its counter rows by primary key. Every organization: one (role, status) summed
    // over all of them (user_counts_role_status_idx).
    const [row] = await this.users.query<{ total: number }[]>(
      `SELECT coalesce(sum(n), 0)::int AS total FROM user_counts
       WHERE ${orgId === null ? '$3::text IS NULL' : 'org_id = $3'} AND role = $1
         AND (status = $2 OR ($2::text IS NULL AND status <> 'deleted'))`,
      [role ?? '*', status ?? null, orgId],
    );
    return row?.total ?? 0;
  }

  /**
   * Matches of a search, counted up to one past `searchCountLimit`. An exact count of a common term costs
   * a pass over every match (at 1,000,000 users, `ann` matches 166,667 rows: about 300 ms of database CPU
   * per request); stopping after the limit bounds it to about 10 ms however many match, and a caller
   * paging through results needs `next_cursor`, not the exact size of a huge result.
   */
  private async countSearchMatches(filtered: SelectQueryBuilder<User>): Promise<number> {
    const [matches, parameters] = filtered
      .select('1')
      .limit(this.searchCountLimit + 1)
      .getQueryAndParameters();
    const [row] = await this.users.query<{ total: number }[]>(
      `SELECT count(*)::int AS total FROM (${matches}) AS matches`,
      parameters,
    );
    return row?.total ?? 0;
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
    user.email = remote.email;
    user.displayName =
      remote.displayName || [remote.givenName, remote.familyName].filter(Boolean).join(' ') || null;
    // An avatar uploaded here wins over Zitadel's picture (see setAvatarUrl).
    if (remote.avatarUrl && !isUploadedAvatarUrl(user.avatarUrl)) user.avatarUrl = remote.avatarUrl;
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
      ? snapshotFields(remote, roles, row.status, row.orgId)
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
