import { ApiProperty } from '@nestjs/swagger';
import { AUDIT_ACTIONS, type AuditChanges, type AuditEvent } from '../entities/audit-event.entity.js';

export class AuditEventDto {
  @ApiProperty({ format: 'uuid' })
  event_id!: string;

  @ApiProperty({ enum: AUDIT_ACTIONS })
  action!: string;

  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'Local id of the caller' })
  actor_user_id!: string | null;

  @ApiProperty({ description: 'Zitadel id of the caller, or `system` for automatic changes' })
  actor_zitadel_id!: string;

  @ApiProperty({ format: 'uuid' })
  target_user_id!: string;

  @ApiProperty({ type: String, nullable: true })
  reason!: string | null;

  @ApiProperty({
    description: 'Before and after values of each changed field',
    type: 'object',
    additionalProperties: {
      type: 'object',
      properties: { before: {}, after: {} },
    },
    example: { status: { before: 'active', after: 'suspended' } },
  })
  changes!: AuditChanges;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'X-Request-Id of the request that made the change',
  })
  request_id!: string | null;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;
}

export class AuditEventListDto {
  @ApiProperty({ type: [AuditEventDto] })
  events!: AuditEventDto[];

  @ApiProperty()
  total!: number;

  @ApiProperty()
  limit!: number;

  @ApiProperty()
  offset!: number;
}

export function toAuditEventDto(event: AuditEvent): AuditEventDto {
  return {
    event_id: event.id,
    action: event.action,
    actor_user_id: event.actorUserId,
    actor_zitadel_id: event.actorZitadelId,
    target_user_id: event.targetUserId,
    reason: event.reason,
    changes: event.changes,
    request_id: event.requestId,
    created_at: event.createdAt.toISOString(),
  };
}
