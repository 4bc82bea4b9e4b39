import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { ERROR_CODES, type ErrorCode } from '../errors/error-code.js';

export class FieldErrorDto {
  @ApiProperty({ example: 'email', description: 'Dotted path of the offending field or parameter' })
  field!: string;

  @ApiProperty({ example: 'email must be an email' })
  message!: string;
}

/** The error body of every endpoint: an RFC 9457 problem document carrying the contract's fields. */
export class ProblemDto {
  @ApiProperty({
    example: 'urn:users-api:problem:validation_error',
    description: 'Identifies the problem type',
  })
  type!: string;

  @ApiProperty({ example: 'Unprocessable Entity', description: 'The HTTP status phrase' })
  title!: string;

  @ApiProperty({ example: 422 })
  status!: number;

  @ApiProperty({ example: 'Invalid value for: email' })
  detail!: string;

  @ApiPropertyOptional({ example: '/api/users/register', description: 'The request path' })
  instance?: string;

  @ApiProperty({ enum: ERROR_CODES, enumName: 'ErrorCode', example: 'validation_error' })
  error!: ErrorCode;

  @ApiProperty({ example: 'Invalid value for: email', description: 'Same text as `detail`' })
  message!: string;

  @ApiProperty({ example: '7f0c2a4e-3a8f-4b7e-9a51-2f1f6f3a9c11', description: 'Also sent as X-Request-Id' })
  request_id!: string;

  @ApiPropertyOptional({ type: [FieldErrorDto], description: 'The failing fields (400 and 422)' })
  errors?: FieldErrorDto[];
}
