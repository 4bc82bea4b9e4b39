import { ApiProperty, ApiPropertyOptional, OmitType } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  ArrayUnique,
  IsArray,
  IsISO8601,
  IsIn,
  IsOptional,
  IsString,
  IsStrongPassword,
  IsUrl,
  Length,
  Matches,
  MaxLength,
  ValidateIf,
} from 'class-validator';
import { PASSWORD_POLICY, RegisterDto } from '../../auth/dto/register.dto.js';
import { ORG_ID_PATTERN } from './list-users.dto.js';

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);
/** Like @IsOptional, but a null is validated (and refused) rather than skipped: only avatar_url may be cleared. */
const presentOrNull = (_object: object, value: unknown) => value !== undefined;
export const ROLE_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Role keys as Zitadel project roles spell them; which ones exist is checked against ROLE_PERMISSIONS. */
function RolesField(): PropertyDecorator {
  return (target, key) => {
    IsArray()(target, key);
    ArrayMinSize(1)(target, key);
    ArrayMaxSize(20)(target, key);
    ArrayUnique()(target, key);
    Matches(ROLE_KEY, { each: true, message: 'each role must be 1-64 letters, digits or _.:-' })(target, key);
  };
}

/** `POST /api/users` (admin): the registration fields, a password that may be left out, and roles. */
export class CreateUserDto extends OmitType(RegisterDto, ['password'] as const) {
  @ApiPropertyOptional({
    description: 'Left out: Zitadel sends the user an invitation to set one',
    example: 'SecurePassword123!',
  })
  @IsOptional()
  @IsString()
  @MaxLength(128)
  @IsStrongPassword(PASSWORD_POLICY, {
    message: 'password needs 8+ characters with upper- and lower-case letters, a digit and a symbol',
  })
  password?: string;

  @ApiPropertyOptional({ type: [String], example: ['user'], default: ['user'] })
  @IsOptional()
  @RolesField()
  roles?: string[];

  @ApiPropertyOptional({
    description:
      'The Zitadel organization to create the user in. Left out: the caller’s own. Another one needs ' +
      '`iam:users` (403 otherwise).',
    example: '300000000000000001',
    pattern: ORG_ID_PATTERN.source,
    maxLength: 30,
  })
  @IsOptional()
  @IsString()
  @Matches(ORG_ID_PATTERN, { message: 'org_id must be a Zitadel organization id (digits)' })
  org_id?: string;
}

export const SELF_EDITABLE_FIELDS = ['display_name', 'avatar_url'] as const;
export const ADMIN_ONLY_FIELDS = ['status', 'roles'] as const;
export type UpdatableField = (typeof SELF_EDITABLE_FIELDS)[number] | (typeof ADMIN_ONLY_FIELDS)[number];

/** `PUT /api/users/:id`: every field optional; `status` and `roles` need `admin:users`. */
export class UpdateUserDto {
  @ApiPropertyOptional({ example: 'John D. Doe' })
  @ValidateIf(presentOrNull)
  @Transform(trimmed)
  @IsString()
  @Length(1, 200)
  display_name?: string;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    description: 'An https URL (never fetched by the server), or null to clear it',
    example: 'https://example.com/avatar.jpg',
  })
  @IsOptional()
  @IsString()
  @MaxLength(2048)
  @IsUrl(
    { protocols: ['https'], require_protocol: true, require_tld: true },
    { message: 'avatar_url must be an https URL' },
  )
  avatar_url?: string | null;

  @ApiPropertyOptional({ enum: ['active', 'suspended'], description: 'Admins only' })
  @ValidateIf(presentOrNull)
  @IsIn(['active', 'suspended'])
  status?: 'active' | 'suspended';

  @ApiPropertyOptional({ type: [String], example: ['user'], description: 'Admins only' })
  @ValidateIf(presentOrNull)
  @RolesField()
  roles?: string[];
}

export class UpdateUserResponseDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['updated'] })
  status!: 'updated';

  @ApiProperty({ type: [String], example: ['display_name'], description: 'The fields whose value changed' })
  updated_fields!: string[];
}

export class SuspendUserDto {
  @ApiProperty({ example: 'Policy violation' })
  @Transform(trimmed)
  @IsString()
  @Length(1, 500)
  reason!: string;

  @ApiPropertyOptional({
    type: String,
    format: 'date-time',
    description: 'The user is reactivated automatically at this time (must be in the future)',
  })
  @IsOptional()
  @IsISO8601({ strict: true }, { message: 'until must be an ISO 8601 date-time' })
  until?: string;
}

export class UserSuspendedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['suspended'] })
  status!: 'suspended';

  @ApiProperty({ format: 'date-time' })
  suspended_at!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  suspended_until!: string | null;
}

export class UserActivatedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['active'] })
  status!: 'active';

  @ApiProperty({ format: 'date-time' })
  activated_at!: string;
}

export class UserDeletedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['deleted'] })
  status!: 'deleted';

  @ApiProperty({ format: 'date-time' })
  deleted_at!: string;
}
