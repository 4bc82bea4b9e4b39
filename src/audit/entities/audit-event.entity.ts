import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn } from 'typeorm';

export const AUDIT_ACTIONS = [
  'user.created',
  'user.updated',
  'user.roles_changed',
  'user.bot_roles_changed',
  'user.suspended',
  'user.activated',
  'user.deleted',
  'session.terminated',
  'sessions.terminated_all',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Before/after values of the fields a write changed, keyed by the API's field names. */
export type AuditChanges = Record<string, { before: unknown; after: unknown }>;

/**
 * One admin write, recorded in the same transaction as the change itself, so the trail can neither miss
 * a change that happened nor show one that was rolled back. Rows are never updated or deleted; the user
 * ids are plain columns (no foreign key) so the trail outlives any row it mentions.
 */
@Entity('audit_events')
@Index('audit_events_target_created_idx', ['targetUserId', 'createdAt', 'id'])
export class AuditEvent {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  /** Local id of the caller; null for a Zitadel service account or the system itself. */
  @Column({ name: 'actor_user_id', type: 'uuid', nullable: true })
  actorUserId!: string | null;

  /** Zitadel id of the caller, or `system` for automatic changes (an expired suspension). */
  @Column({ name: 'actor_zitadel_id', type: 'text' })
  actorZitadelId!: string;

  @Column({ name: 'target_user_id', type: 'uuid' })
  targetUserId!: string;

  @Column({ type: 'varchar', length: 64 })
  action!: AuditAction;

  @Column({ type: 'text', nullable: true })
  reason!: string | null;

  @Column({ type: 'jsonb', default: () => "'{}'" })
  changes!: AuditChanges;

  @Column({ name: 'request_id', type: 'text', nullable: true })
  requestId!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
