import { ApiProperty } from '@nestjs/swagger';
import type { User } from '../entities/user.entity.js';

/** `GET /api/users/me`: the contract's fields, exactly. */
export class UserProfileDto {
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

  @ApiProperty({ type: [String], example: ['user', 'manager'] })
  roles!: string[];

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_login!: string | null;
}

export function toUserProfileDto(user: User): UserProfileDto {
  return {
    user_id: user.id,
    username: user.username,
    email: user.email,
    display_name: user.displayName,
    avatar_url: user.avatarUrl,
    roles: user.roles,
    created_at: user.createdAt.toISOString(),
    last_login: user.lastLogin?.toISOString() ?? null,
  };
}
