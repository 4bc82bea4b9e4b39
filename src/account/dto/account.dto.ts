import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsOptional, IsString, IsUUID, Length, MaxLength } from 'class-validator';
import { OptionalBody } from '../../common/http/validation.pipe.js';
import { USER_STATUSES } from '../../users/entities/user.entity.js';
import { SessionDto } from '../../sessions/dto/session.dto.js';
import { SettingsDto } from '../../settings/dto/settings.dto.js';
import { AuditEventDto } from '../../audit/dto/audit-event.dto.js';

/** The most sessions, and the most audit entries, one export lists (the newest ones). */
export const EXPORT_MAX_ITEMS = 100_000;

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

/** What a new password may be before the policy is asked: Zitadel's own bounds (1–200, its proto). */
const NEW_PASSWORD_DOC =
  'The new password. Zitadel’s password complexity policy applies (read from Zitadel); a password that ' +
  'breaks it answers 422 naming each broken rule, and Zitadel is not called.';

export class EmailDto {
  @ApiProperty({ example: 'john@example.com' })
  @Transform(trimmed)
  @IsEmail()
  @MaxLength(254)
  email!: string;
}

export class PasswordResetRequestDto extends EmailDto {}

export class ResendVerificationDto extends EmailDto {}

/** The same answer whatever the account's existence or state. */
export class AcceptedDto {
  @ApiProperty({ enum: ['accepted'] })
  status!: 'accepted';

  @ApiProperty({ example: 'If the address belongs to an account, a code is on its way' })
  message!: string;
}

export class PasswordResetConfirmDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'The account: `user_id` or `email`, exactly one' })
  @IsOptional()
  @IsUUID()
  user_id?: string;

  @ApiPropertyOptional({ example: 'john@example.com', description: 'The account: `user_id` or `email`' })
  @IsOptional()
  @Transform(trimmed)
  @IsEmail()
  @MaxLength(254)
  email?: string;

  @ApiProperty({ example: 'X7K2QD', description: 'The code Zitadel mailed' })
  @IsString()
  @Length(1, 20)
  code!: string;

  @ApiProperty({ example: 'N3w-Secret-Passw0rd', description: NEW_PASSWORD_DOC })
  @IsString()
  @Length(1, 200)
  new_password!: string;
}

export class PasswordResetDoneDto {
  @ApiProperty({ enum: ['password_reset'] })
  status!: 'password_reset';

  @ApiProperty({ example: 'Password changed; every session was ended, log in again' })
  message!: string;
}

export class ChangePasswordDto {
  @ApiProperty({ example: 'Old-Secret-Passw0rd' })
  @IsString()
  @Length(1, 200)
  current_password!: string;

  @ApiProperty({ example: 'N3w-Secret-Passw0rd', description: NEW_PASSWORD_DOC })
  @IsString()
  @Length(1, 200)
  new_password!: string;
}

export class PasswordChangedDto {
  @ApiProperty({ enum: ['password_changed'] })
  status!: 'password_changed';

  @ApiProperty({ example: 2, description: 'Other sessions ended (the current one is kept)' })
  terminated_sessions!: number;
}

export class EmailChangePendingDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['pending_verification'] })
  status!: 'pending_verification';

  @ApiProperty({ example: 'john@example.com', description: 'The current address, in use until verification' })
  email!: string;

  @ApiProperty({ example: 'john.doe@example.org', description: 'The new address, waiting for its code' })
  pending_email!: string;
}

export class VerifyEmailChangeDto {
  @ApiProperty({ example: 'X7K2QD' })
  @IsString()
  @Length(1, 64)
  code!: string;
}

export class EmailChangedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['verified'] })
  status!: 'verified';

  @ApiProperty({ example: 'john.doe@example.org' })
  email!: string;
}

@OptionalBody()
export class EraseAccountDto {
  @ApiPropertyOptional({
    description:
      'The current password. Not needed when the session behind the token began less than 5 minutes ' +
      'ago (a fresh login)',
  })
  @IsOptional()
  @IsString()
  @Length(1, 200)
  password?: string;
}

export class AccountErasedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['erased'] })
  status!: 'erased';

  @ApiProperty({ format: 'date-time' })
  erased_at!: string;
}

export class ExportProfileDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty()
  zitadel_id!: string;

  @ApiProperty({ description: 'The Zitadel organization the account belongs to', maxLength: 30 })
  org_id!: string;

  @ApiProperty()
  username!: string;

  @ApiProperty()
  email!: string;

  @ApiProperty({ type: String, nullable: true })
  pending_email!: string | null;

  @ApiProperty({ type: String, nullable: true })
  display_name!: string | null;

  @ApiProperty({ type: String, nullable: true })
  avatar_url!: string | null;

  @ApiProperty({ enum: USER_STATUSES })
  status!: string;

  @ApiProperty({ type: [String] })
  roles!: string[];

  @ApiProperty({ type: String, nullable: true })
  suspension_reason!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  suspended_at!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  suspended_until!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  last_login!: string | null;

  @ApiProperty({ format: 'date-time' })
  created_at!: string;

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

export class ExportSessionDto extends SessionDto {
  @ApiProperty({ enum: ['active', 'terminated', 'expired'] })
  status!: string;

  @ApiProperty({ enum: ['password', 'oidc'] })
  auth_method!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  terminated_at!: string | null;
}

/** The uploaded avatar's metadata (the image itself is at the profile's avatar_url). */
export class ExportAvatarDto {
  @ApiProperty({ description: 'Whether an image was uploaded; the other fields are null when not' })
  uploaded!: boolean;

  @ApiProperty({ type: String, nullable: true, example: 'image/png' })
  content_type!: string | null;

  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 of the image, hex' })
  sha256!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  updated_at!: string | null;
}

export class AccountExportDto {
  @ApiProperty({ format: 'date-time' })
  exported_at!: string;

  @ApiProperty({ type: ExportProfileDto })
  profile!: ExportProfileDto;

  @ApiProperty({ type: SettingsDto })
  settings!: SettingsDto;

  @ApiProperty({
    type: [ExportSessionDto],
    maxItems: EXPORT_MAX_ITEMS,
    description: 'Every session, ended ones too, newest first',
  })
  sessions!: ExportSessionDto[];

  @ApiProperty({
    type: [AuditEventDto],
    maxItems: EXPORT_MAX_ITEMS,
    description:
      'Audit entries about the caller (not those an administrator made about others), oldest first',
  })
  audit_events!: AuditEventDto[];

  @ApiProperty({ type: ExportAvatarDto })
  avatar!: ExportAvatarDto;
}
