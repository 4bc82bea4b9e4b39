import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsBoolean, IsEmail, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { IgnoreUnknownProperties } from '../../common/http/validation.pipe.js';
import { OptionalBotId } from '../../sessions/dto/bot-id.js';

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class LoginDto {
  @ApiProperty({ example: 'user@example.com' })
  @Transform(trimmed)
  @IsEmail()
  @MaxLength(254)
  email!: string;

  @ApiPropertyOptional({
    description:
      'With a password: checked through Zitadel, a session token is returned. Without: a redirect URL for the OIDC login page.',
    example: 'SecurePassword123!',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(1024)
  password?: string;

  @ApiPropertyOptional({ description: 'A longer session lifetime', default: false })
  @IsOptional()
  @IsBoolean()
  remember_me?: boolean;

  @OptionalBotId(
    'The bot this session belongs to: the session records it, `GET /api/users/:id/sessions` shows it and ' +
      '`DELETE /api/users/:id/sessions?bot_id=` ends only that bot’s sessions. A browser login carries it ' +
      'through its OIDC state.',
  )
  bot_id?: string;
}

export class LoginSessionDto {
  @ApiProperty({ description: 'Send as `Authorization: Bearer <session_token>`' })
  session_token!: string;

  @ApiProperty({ enum: ['Bearer'] })
  token_type!: 'Bearer';

  @ApiProperty({ format: 'date-time' })
  expires_at!: string;

  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({
    description: 'Where the client goes next after a password login (`LOGIN_REDIRECT_URL`, default `/`)',
    example: '/',
  })
  redirect_url!: string;
}

export class LoginRedirectDto {
  @ApiProperty({
    description:
      'Zitadel’s hosted login page (OIDC code flow with PKCE, `state` and `login_hint`). Answered to a login ' +
      'without a password, and to a password login that Zitadel says needs more than a password (a second ' +
      'factor enrolled or required by the login policy, or password logins not allowed): the browser ' +
      'finishes the login there and lands on `GET /api/users/login/callback`.',
    example: 'https://auth.example.com/oauth/v2/authorize?client_id=…',
  })
  redirect_url!: string;
}

@IgnoreUnknownProperties()
export class LoginCallbackQuery {
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2048) code?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) state?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) error?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2048) error_description?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(2048) iss?: string;
  @ApiPropertyOptional() @IsOptional() @IsString() @MaxLength(256) session_state?: string;
}

export class LogoutResponseDto {
  @ApiProperty({ enum: ['logged_out'] })
  status!: 'logged_out';

  @ApiProperty({ example: '/' })
  redirect_url!: string;

  @ApiPropertyOptional({ description: "Zitadel's end-session URL, when the login came through OIDC" })
  end_session_url?: string;
}
