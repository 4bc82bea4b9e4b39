import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsIn, IsOptional, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { PageQuery } from '../../common/http/pagination.js';
import { OptionalBotId } from '../../sessions/dto/bot-id.js';
import { LISTABLE_STATUSES } from '../entities/user.entity.js';

/** Zitadel ids (organizations among them) are numeric strings. */
export const ORG_ID_PATTERN = /^\d{1,30}$/;

export const USER_SORTS = ['created_at', '-created_at', 'username', '-username', 'email', '-email'] as const;
export type UserSort = (typeof USER_SORTS)[number];

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class ListUsersQuery extends PageQuery {
  @ApiPropertyOptional({ enum: LISTABLE_STATUSES })
  @IsOptional()
  @IsIn(LISTABLE_STATUSES)
  status?: (typeof LISTABLE_STATUSES)[number];

  @ApiPropertyOptional({ description: 'Users holding this role', example: 'manager' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_.:-]{1,64}$/, { message: 'role must be 1-64 letters, digits or _.:-' })
  role?: string;

  @OptionalBotId(
    'With `role`: users holding that role in this bot (their roles in the bot where set, else their ' +
      'organization roles). Without `role`: users holding roles in this bot. Such a list counts its ' +
      '`total` as a search does.',
  )
  bot_id?: string;

  @ApiPropertyOptional({
    description:
      'Only users of this Zitadel organization. For callers with `iam:users` (who otherwise see every ' +
      'organization); any other caller always lists their own organization, and naming another one ' +
      'answers 403.',
    example: '300000000000000001',
    pattern: ORG_ID_PATTERN.source,
    maxLength: 30,
  })
  @IsOptional()
  @IsString()
  @Matches(ORG_ID_PATTERN, { message: 'org_id must be a Zitadel organization id (digits)' })
  org_id?: string;

  @ApiPropertyOptional({
    description: 'Case-insensitive substring of username, display name or email (1-100 characters)',
    example: 'john',
  })
  @IsOptional()
  @Transform(trimmed)
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  search?: string;

  @ApiPropertyOptional({
    enum: USER_SORTS,
    default: 'created_at',
    description: 'Sort key; a leading `-` sorts descending. Ties are broken by user id.',
  })
  @IsOptional()
  @IsIn(USER_SORTS)
  sort?: UserSort;

  @ApiPropertyOptional({
    description: 'Keyset pagination: `next_cursor` of the previous page (same filters and sort; no offset)',
  })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  cursor?: string;
}

export class UserSummaryDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty()
  username!: string;

  @ApiProperty()
  email!: string;

  @ApiProperty({ type: String, nullable: true })
  display_name!: string | null;

  @ApiProperty({ enum: LISTABLE_STATUSES })
  status!: string;

  @ApiProperty({ type: [String] })
  roles!: string[];

  @ApiProperty({ format: 'date-time' })
  created_at!: string;
}

export class UserListDto {
  @ApiProperty({ type: [UserSummaryDto] })
  users!: UserSummaryDto[];

  @ApiProperty({
    description:
      'Number of users matching the filters: exact without a search; with one, counted up to a limit ' +
      '(1,000 by default), past which it is the limit and `total_exact` is false',
  })
  total!: number;

  @ApiProperty({
    description: 'False when `total` is a lower bound: a search matched more users than it counts',
  })
  total_exact!: boolean;

  @ApiProperty()
  limit!: number;

  @ApiProperty()
  offset!: number;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Pass as `cursor` for the next page; null on the last page',
  })
  next_cursor!: string | null;
}

/**
 * UserListDto as JSON text around `users`, a JSON array that PostgreSQL already wrote (see
 * users/user-list.sql.ts). Fastify sends a string with a JSON content type as it is.
 */
export function userListJson(usersJson: string, rest: Omit<UserListDto, 'users'>): string {
  return `{"users":${usersJson},${JSON.stringify(rest).slice(1)}`;
}
