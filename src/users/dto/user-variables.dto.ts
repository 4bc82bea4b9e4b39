import { ApiProperty } from '@nestjs/swagger';

/**
 * `GET /api/users/me/variables`: what the bot platform's BASIC runtime reads (`GET user_name`,
 * `GET user_email`, `GET role`), with the contract's names, and the preferences a script formats with.
 */
export class UserVariablesDto {
  @ApiProperty({ format: 'uuid', description: 'The user id (a UUID)' })
  user_id!: string;

  @ApiProperty({ example: 'John Doe', description: 'The display name, or the username when it is empty' })
  user_name!: string;

  @ApiProperty({ example: 'john@example.com' })
  user_email!: string;

  @ApiProperty({
    example: 'manager',
    description:
      'The highest of `roles` in the order admin > manager > user (any other role ranks below user)',
  })
  role!: string;

  @ApiProperty({ type: [String], example: ['manager', 'user'], description: 'All roles' })
  roles!: string[];

  @ApiProperty({ example: 'en', description: 'The `language` setting (default en)' })
  language!: string;

  @ApiProperty({ example: 'UTC', description: 'The `timezone` setting (default UTC)' })
  timezone!: string;
}
