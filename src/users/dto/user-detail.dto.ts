import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { USER_STATUSES, type User } from '../entities/user.entity.js';
import { toUserProfileDto, UserProfileDto } from './user-profile.dto.js';

/** `GET /api/users/:id`: the profile of `/me`, the status, and (for admins only) the status details. */
export class UserDetailDto extends UserProfileDto {
  @ApiProperty({ enum: USER_STATUSES.filter((s) => s !== 'deleted') })
  status!: string;

  @ApiPropertyOptional({ description: 'Admins only: Zitadel’s id of the user', example: '69629012906488334' })
  zitadel_id?: string;

  @ApiPropertyOptional({
    description: 'Admins only: the Zitadel organization the user belongs to',
    example: '300000000000000001',
    maxLength: 30,
  })
  org_id?: string;

  @ApiPropertyOptional({ type: String, nullable: true, description: 'Admins only' })
  suspension_reason?: string | null;

  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: 'Admins only' })
  suspended_at?: string | null;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'Admins only: when the suspension ends by itself',
  })
  suspended_until?: string | null;

  @ApiPropertyOptional({ type: String, format: 'date-time', description: 'Admins only' })
  updated_at?: string;
}

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function toUserDetailDto(user: User, options: { withAdminDetails: boolean }): UserDetailDto {
  const dto: UserDetailDto = { ...toUserProfileDto(user), status: user.status };
  if (!options.withAdminDetails) return dto;
  return {
    ...dto,
    zitadel_id: user.zitadelId,
    org_id: user.orgId,
    suspension_reason: user.suspensionReason,
    suspended_at: iso(user.suspendedAt),
    suspended_until: iso(user.suspendedUntil),
    updated_at: user.updatedAt.toISOString(),
  };
}
