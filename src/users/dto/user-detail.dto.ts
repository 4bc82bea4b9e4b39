import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { USER_STATUSES, type User } from '../entities/user.entity.js';

/** `GET /api/users/:id`: the contract's fields, the profile's, and (for admins only) the status details. */
export class UserDetailDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ example: 'john_doe' })
  username!: string;

  @ApiProperty({ example: 'john@example.com' })
  email!: string;

  @ApiProperty({ type: String, nullable: true, example: 'John Doe' })
  display_name!: string | null;

  @ApiProperty({ type: String, nullable: true, example: 'https://cdn.example.com/a.png' })
  avatar_url!: string | null;

  @ApiProperty({ enum: USER_STATUSES.filter((s) => s !== 'deleted') })
  status!: string;

  @ApiProperty({ type: [String], example: ['user'] })
  roles!: string[];

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_login!: string | null;

  @ApiPropertyOptional({ description: 'Admins only: Zitadel’s id of the user', example: '69629012906488334' })
  zitadel_id?: string;

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
  const dto: UserDetailDto = {
    user_id: user.id,
    username: user.username,
    email: user.email,
    display_name: user.displayName,
    avatar_url: user.avatarUrl,
    status: user.status,
    roles: user.roles,
    created_at: user.createdAt.toISOString(),
    last_login: iso(user.lastLogin),
  };
  if (!options.withAdminDetails) return dto;
  return {
    ...dto,
    zitadel_id: user.zitadelId,
    suspension_reason: user.suspensionReason,
    suspended_at: iso(user.suspendedAt),
    suspended_until: iso(user.suspendedUntil),
    updated_at: user.updatedAt.toISOString(),
  };
}
