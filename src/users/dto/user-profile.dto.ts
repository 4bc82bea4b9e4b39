import { ApiProperty } from '@nestjs/swagger';
import { avatarUrlOf } from '../avatar-url.js';
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

  @ApiProperty({
    example: '/api/users/0b7c1f9e-3f7a-4c8e-9d1a-5e2f4a6b8c0d/avatar',
    description:
      'Never null. An external picture (an https URL set with PUT, or the identity provider’s) as it is; ' +
      'otherwise this service’s avatar URL, which serves the upload or a generated image (initials).',
  })
  avatar_url!: string;

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
    avatar_url: avatarUrlOf(user),
    roles: user.roles,
    created_at: user.createdAt.toISOString(),
    last_login: user.lastLogin?.toISOString() ?? null,
  };
}
