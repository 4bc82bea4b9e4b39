import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  UpdateDateColumn,
} from 'typeorm';
import { User } from './user.entity.js';

/**
 * A user's roles in one bot: the one source of truth for bot roles (docs/identity.md, "Organizations and
 * bot roles"). Set and removed only through `PUT`/`DELETE /api/users/:id/bots/:bot_id/roles`; Zitadel
 * knows nothing of bots, so no sync touches it. A row with roles overrides the organization roles for
 * that bot's sessions (`GET /api/users/me/variables`); no row means the organization roles apply.
 */
@Entity('user_bot_roles')
@Index('user_bot_roles_bot_idx', ['botId', 'userId'])
export class UserBotRole {
  @PrimaryColumn({ name: 'user_id', type: 'uuid', primaryKeyConstraintName: 'user_bot_roles_pkey' })
  userId!: string;

  @PrimaryColumn({ name: 'bot_id', type: 'text', primaryKeyConstraintName: 'user_bot_roles_pkey' })
  botId!: string;

  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'user_bot_roles_user_id_fkey' })
  user?: User;

  /** Sorted, unique, never empty (removing all of them deletes the row). */
  @Column({ type: 'text', array: true })
  roles!: string[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
