import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsObject,
  IsOptional,
  IsString,
  Length,
  registerDecorator,
  ValidateNested,
  type ValidationOptions,
} from 'class-validator';
import {
  canonicalLanguageTag,
  canonicalTimeZone,
  DEFAULT_BOT_MAX_LENGTH,
  DIGESTS,
  THEMES,
  type Digest,
  type NotificationSettings,
  type Settings,
  type Theme,
} from '../settings.definitions.js';

function IsLanguageTag(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isLanguageTag',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: '$property must be a BCP 47 language tag such as en or pt-BR', ...options },
      validator: { validate: (value: unknown) => canonicalLanguageTag(value) !== undefined },
    });
}

function IsTimeZone(options?: ValidationOptions): PropertyDecorator {
  return (target, propertyName) =>
    registerDecorator({
      name: 'isTimeZone',
      target: target.constructor,
      propertyName: propertyName as string,
      options: { message: '$property must be an IANA time zone such as Europe/Berlin or UTC', ...options },
      validator: { validate: (value: unknown) => canonicalTimeZone(value) !== undefined },
    });
}

const RESETS = 'null resets it to the default';

// Request. Every field is optional (PUT merges), and `null` is a value of its own: @IsOptional skips the
// other validators for null as for absence, and the service tells the two apart (absent = keep).

export class NotificationSettingsPatchDto {
  @ApiPropertyOptional({ type: Boolean, nullable: true, description: `Default true; ${RESETS}` })
  @IsOptional()
  @IsBoolean()
  email?: boolean | null;

  @ApiPropertyOptional({ type: Boolean, nullable: true, description: `Default true; ${RESETS}` })
  @IsOptional()
  @IsBoolean()
  push?: boolean | null;

  @ApiPropertyOptional({ enum: DIGESTS, nullable: true, description: `Default none; ${RESETS}` })
  @IsOptional()
  @IsIn(DIGESTS)
  digest?: Digest | null;
}

export class UpdateSettingsDto {
  @ApiPropertyOptional({ enum: THEMES, nullable: true, description: `Default system; ${RESETS}` })
  @IsOptional()
  @IsIn(THEMES)
  theme?: Theme | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    example: 'pt-BR',
    description: `A BCP 47 language tag, stored in canonical case (EN-us → en-US). Default en; ${RESETS}`,
  })
  @IsOptional()
  @IsLanguageTag()
  language?: string | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    example: 'America/New_York',
    description: `An IANA time zone. Default UTC; ${RESETS}`,
  })
  @IsOptional()
  @IsTimeZone()
  timezone?: string | null;

  @ApiPropertyOptional({
    type: NotificationSettingsPatchDto,
    nullable: true,
    description: `Merged into the stored preferences: keys left out stay as they are. ${RESETS} (all three)`,
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => NotificationSettingsPatchDto)
  notifications?: NotificationSettingsPatchDto | null;

  @ApiPropertyOptional({
    type: String,
    nullable: true,
    maxLength: DEFAULT_BOT_MAX_LENGTH,
    minLength: 1,
    example: 'support-bot',
    description: `The bot conversations open with. Default null (none); ${RESETS}`,
  })
  @IsOptional()
  @IsString()
  @Length(1, DEFAULT_BOT_MAX_LENGTH)
  default_bot?: string | null;
}

// Responses.

export class NotificationSettingsDto implements NotificationSettings {
  @ApiProperty({ example: true })
  email!: boolean;

  @ApiProperty({ example: false })
  push!: boolean;

  @ApiProperty({ enum: DIGESTS, example: 'daily' })
  digest!: Digest;
}

/** `GET /api/users/:id/settings`: every preference, the default where the user chose nothing. */
export class SettingsDto implements Settings {
  @ApiProperty({ enum: THEMES, example: 'dark' })
  theme!: Theme;

  @ApiProperty({ example: 'en' })
  language!: string;

  @ApiProperty({ example: 'America/New_York' })
  timezone!: string;

  @ApiProperty({ type: NotificationSettingsDto })
  notifications!: NotificationSettingsDto;

  @ApiProperty({ type: String, nullable: true, example: 'support-bot' })
  default_bot!: string | null;
}

/** The preferences whose effective value a PUT changed, with their new values. */
export class ChangedSettingsDto implements Partial<Settings> {
  @ApiPropertyOptional({ enum: THEMES })
  theme?: Theme;

  @ApiPropertyOptional({ example: 'en' })
  language?: string;

  @ApiPropertyOptional({ example: 'America/New_York' })
  timezone?: string;

  @ApiPropertyOptional({ type: NotificationSettingsDto, description: 'The whole object after the merge' })
  notifications?: NotificationSettingsDto;

  @ApiPropertyOptional({ type: String, nullable: true })
  default_bot?: string | null;
}

export class SettingsUpdatedDto {
  @ApiProperty({ enum: ['updated'] })
  status!: 'updated';

  @ApiProperty({ type: ChangedSettingsDto })
  settings!: ChangedSettingsDto;
}

export function toSettingsDto(settings: Settings): SettingsDto {
  return {
    theme: settings.theme,
    language: settings.language,
    timezone: settings.timezone,
    notifications: { ...settings.notifications },
    default_bot: settings.default_bot,
  };
}

export function toChangedSettingsDto(changes: Partial<Settings>): ChangedSettingsDto {
  const dto: ChangedSettingsDto = {};
  if (changes.theme !== undefined) dto.theme = changes.theme;
  if (changes.language !== undefined) dto.language = changes.language;
  if (changes.timezone !== undefined) dto.timezone = changes.timezone;
  if (changes.notifications !== undefined) dto.notifications = { ...changes.notifications };
  if (changes.default_bot !== undefined) dto.default_bot = changes.default_bot;
  return dto;
}
