import { Column, Entity, PrimaryColumn, UpdateDateColumn } from 'typeorm';

/**
 * The last applied Zitadel event per aggregate (a user, or a user grant). Webhook deliveries may be
 * retried, replayed or reordered; an event whose sequence is not above the stored one changes nothing.
 */
@Entity('zitadel_event_cursors')
export class ZitadelEventCursor {
  /** Zitadel's aggregate type: `user` or `usergrant`. */
  @PrimaryColumn({
    name: 'aggregate_type',
    type: 'varchar',
    length: 32,
    primaryKeyConstraintName: 'zitadel_event_cursors_pkey',
  })
  aggregateType!: string;

  /** Zitadel's aggregate id (a numeric string). */
  @PrimaryColumn({
    name: 'aggregate_id',
    type: 'text',
    primaryKeyConstraintName: 'zitadel_event_cursors_pkey',
  })
  aggregateId!: string;

  /** bigint: pg returns it as a string, which is also how Zitadel writes uint64 in JSON. */
  @Column({ type: 'bigint' })
  sequence!: string;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
