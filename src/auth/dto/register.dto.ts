import { ApiProperty } from '@nestjs/swagger';
import { Transform } from 'class-transformer';
import { IsEmail, IsString, IsUUID, Length, Matches, MaxLength } from 'class-validator';

const trimmed = ({ value }: { value: unknown }) => (typeof value === 'string' ? value.trim() : value);

export class RegisterDto {
  @ApiProperty({ example: 'newuser@example.com' })
  @Transform(trimmed)
  @IsEmail()
  @MaxLength(254)
  email!: string;

  @ApiProperty({ example: 'newuser', description: '3–64 characters: letters, digits, `.`, `_`, `-`' })
  @Matches(/^[A-Za-z0-9._-]{3,64}$/, { message: 'username must be 3-64 letters, digits, ".", "_" or "-"' })
  username!: string;

  @ApiProperty({
    example: 'SecurePassword123!',
    description:
      'Zitadel’s password complexity policy applies, read from Zitadel (by default: at least 8 characters ' +
      'with an upper-case letter, a lower-case letter, a digit and a symbol); a password that breaks it is ' +
      '422 naming each broken rule, before Zitadel is called',
  })
  @IsString()
  @Length(1, 128)
  password!: string;

  @ApiProperty({ example: 'New User' })
  @Transform(trimmed)
  @IsString()
  @Length(1, 200)
  display_name!: string;
}

export class RegisterResponseDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['pending_verification'] })
  status!: 'pending_verification';

  @ApiProperty({ example: 'Check your email to verify your account' })
  message!: string;
}

export class VerifyEmailDto {
  @ApiProperty({ format: 'uuid' })
  @IsUUID()
  user_id!: string;

  @ApiProperty({ example: 'X7K2QD' })
  @IsString()
  @Length(1, 64)
  code!: string;
}

export class VerifyEmailResponseDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ enum: ['active'] })
  status!: 'active';

  @ApiProperty({ example: 'Email verified; you can log in now' })
  message!: string;
}
