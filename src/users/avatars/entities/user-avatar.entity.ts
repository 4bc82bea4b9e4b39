import { Check, Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, UpdateDateColumn } from 'typeorm';
import { User } from '../../entities/user.entity.js';
import type { AvatarContentType } from '../image-format.js';

/**
 * The uploaded avatar of a user, at most one (the user id is the key). Bytes live in PostgreSQL: avatars
 * are small (≤ 1 MB), and one store means one backup and no orphaned files. The row goes with its user.
 */
@Entity('user_avatars')
@Check('user_avatars_content_type_check', `"content_type" IN ('image/png', 'image/jpeg', 'image/webp')`)
export class UserAvatar {
  @PrimaryColumn({ name: 'user_id', type: 'uuid', primaryKeyConstraintName: 'user_avatars_pkey' })
  userId!: string;

  // Many-to-one rather than one-to-one: the primary key already makes user_id unique, and one-to-one
  // would add a second unique constraint on the same column.
  @ManyToOne(() => User, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'user_id', foreignKeyConstraintName: 'user_avatars_user_id_fkey' })
  user?: User;

  /** Detected from the bytes, never taken from the request's Content-Type. */
  @Column({ name: 'content_type', type: 'varchar', length: 32 })
  contentType!: AvatarContentType;

  @Column({ type: 'bytea' })
  bytes!: Buffer;

  /** SHA-256 of the bytes, hex: the ETag (a strong validator, since it changes exactly with the bytes). */
  @Column({ type: 'varchar', length: 64 })
  sha256!: string;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
