import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  UpdateDateColumn,
  VersionColumn,
} from 'typeorm';

export const USER_STATUSES = ['active', 'suspended', 'inactive', 'pending_verification', 'deleted'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];
/** Deleted users are gone from every read and list. */
export const LISTABLE_STATUSES = ['active', 'suspended', 'inactive', 'pending_verification'] as const;

/**
 * The local cache of a Zitadel user plus what only this service knows (roles as last seen, suspension,
 * last login). Deleted users keep their row (status `deleted`, `deleted_at`) for the audit trail.
 *
 * Indexes that TypeORM cannot describe (expressions, partial uniques, trigram) are declared with
 * `synchronize: false` so the schema diff leaves them alone; they are created by the migrations.
 */
@Entity('users')
@Check(
  'users_status_check',
  `"status" IN ('active', 'suspended', 'inactive', 'pending_verification', 'deleted')`,
)
// Case-insensitive uniqueness among users that still exist: lower(email), lower(username).
@Index('users_email_lower_key', { synchronize: false })
@Index('users_username_lower_key', { synchronize: false })
// lower(email) over all rows, deleted ones included (login tells a deleted account from an unknown one).
@Index('users_email_lower_idx', { synchronize: false })
// lower(pending_email) among users that still exist: one pending change per address.
@Index('users_pending_email_lower_key', { synchronize: false })
// Case-insensitive substring search over search_text inside an organization: GIN over org_id (btree_gin)
// and the trigrams of search_text (pg_trgm).
@Index('users_org_search_text_idx', { synchronize: false })
// A search's count: an index-only scan of one organization's (search_text, status), see migration
// SearchCountIndex. TypeORM cannot describe INCLUDE.
@Index('users_org_search_text_count_idx', { synchronize: false })
// Lists and searches inside one organization: every index a list uses leads with org_id (issue 19).
@Index('users_org_status_created_idx', ['orgId', 'status', 'createdAt', 'id'])
@Index('users_org_created_idx', ['orgId', 'createdAt', 'id'])
@Index('users_org_username_idx', ['orgId', 'username', 'id'])
@Index('users_org_email_idx', ['orgId', 'email', 'id'])
// Instance-wide listings (callers with iam:users and no org_id), newest or oldest first.
@Index('users_created_idx', ['createdAt', 'id'])
export class User {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Zitadel's user id: a numeric string, never a UUID. */
  @Index('users_zitadel_id_key', { unique: true })
  @Column({ name: 'zitadel_id', type: 'text' })
  zitadelId!: string;

  /** The Zitadel organization the user belongs to (its resource owner); scopes every admin read and write. */
  @Column({ name: 'org_id', type: 'text' })
  orgId!: string;

  @Column({ type: 'text' })
  username!: string;

  @Column({ type: 'text' })
  email!: string;

  /**
   * A new address waiting for its code (PUT /api/users/me/email). Zitadel already holds it, unverified;
   * here `email` stays the old, confirmed one until the code is verified.
   */
  @Column({ name: 'pending_email', type: 'text', nullable: true })
  pendingEmail!: string | null;

  @Column({ name: 'display_name', type: 'text', nullable: true })
  displayName!: string | null;

  @Column({ name: 'avatar_url', type: 'text', nullable: true })
  avatarUrl!: string | null;

  @Column({ type: 'varchar', length: 32, default: 'active' })
  status!: UserStatus;

  /**
   * What search matches: username, email and display name, lower-cased, kept by PostgreSQL. Stored
   * rather than computed per row in each query: a search reads thousands of rows, and three lower()
   * calls and two concatenations per row were most of its cost. Not selected by finds; TypeORM does
   * return it after an insert or update, and no DTO maps it.
   */
  @Column({
    name: 'search_text',
    type: 'text',
    generatedType: 'STORED',
    asExpression: `lower(username) || ' ' || lower(email) || ' ' || lower(coalesce(display_name, ''))`,
    select: false,
    insert: false,
    update: false,
  })
  searchText!: string;

  @Index('users_roles_idx', { synchronize: false })
  @Column({ type: 'text', array: true, default: () => "'{user}'" })
  roles!: string[];

  @Column({ name: 'last_login', type: 'timestamptz', nullable: true })
  lastLogin!: Date | null;

  @Column({ name: 'suspension_reason', type: 'text', nullable: true })
  suspensionReason!: string | null;

  @Column({ name: 'suspended_at', type: 'timestamptz', nullable: true })
  suspendedAt!: Date | null;

  /** When set, the user is reactivated automatically at this time. */
  @Column({ name: 'suspended_until', type: 'timestamptz', nullable: true })
  suspendedUntil!: Date | null;

  @Column({ name: 'deleted_at', type: 'timestamptz', nullable: true })
  deletedAt!: Date | null;

  /** While set and in the future, an admin write is waiting on Zitadel for this user (UserAdminService). */
  @Column({ name: 'write_lease_until', type: 'timestamptz', nullable: true, select: false })
  writeLeaseUntil!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  /** Optimistic concurrency: bumped on every save, exposed as the ETag. */
  @VersionColumn({ default: 1 })
  version!: number;
}
