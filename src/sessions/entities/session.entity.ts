import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
} from 'typeorm';
import { User } from '../../users/entities/user.entity.js';

export const SESSION_STATUSES = ['active', 'terminated', 'expired'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** How the user proved who they are: a password checked through Zitadel's session API, or OIDC. */
export const AUTH_METHODS = ['password', 'oidc'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/**
 * A login session. Tokens carry the session id, and a token is honoured only while its session is
 * active and unexpired: this table, not the identity provider, is what makes revocation immediate.
 */
@Entity('sessions')
@Check('sessions_status_check', `"status" IN ('active', 'terminated', 'expired')`)
@Check('sessions_auth_method_check', `"auth_method" IN ('password', 'oidc')`)
@Index('sessions_user_status_idx', ['userId', 'status'])
export class Session {
  @PrimaryGeneratedColumn('uuid')
  id!: string;

  @Column({ name: 'user_id', type: 'uuid' })
  userId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'sessions_user_id_fkey' })
  user?: User;

  /** The bot the session was opened for, when a bot server opened it. */
  @Column({ name: 'bot_id', type: 'text', nullable: true })
  botId!: string | null;

  @Column({ type: 'varchar', length: 16, default: 'active' })
  status!: SessionStatus;

  /** "Chrome on Windows", parsed once from the User-Agent at login. */
  @Column({ name: 'device_info', type: 'text', nullable: true })
  deviceInfo!: string | null;

  @Column({ name: 'ip_address', type: 'inet', nullable: true })
  ipAddress!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'last_activity', type: 'timestamptz', default: () => 'now()' })
  lastActivity!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @Column({ name: 'terminated_at', type: 'timestamptz', nullable: true })
  terminatedAt!: Date | null;

  @Column({ name: 'auth_method', type: 'varchar', length: 16, default: 'password' })
  authMethod!: AuthMethod;

  /** Zitadel's ID token of an OIDC login, kept only as the id_token_hint for its end-session URL. */
  @Column({ name: 'id_token', type: 'text', nullable: true })
  idToken!: string | null;
}
