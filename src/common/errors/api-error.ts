import { HttpException } from '@nestjs/common';
import { ERROR_STATUS, type ErrorCode } from './error-code.js';

export interface FieldError {
  /** Dotted path of the offending field (`notifications.digest`), or the parameter name. */
  field: string;
  message: string;
}

/**
 * The one exception services throw for an expected failure. It carries the contract's error code;
 * the global filter turns it into a problem document. Anything else that escapes becomes a bare 500.
 */
export class ApiError extends HttpException {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly fieldErrors?: FieldError[],
  ) {
    super(message, ERROR_STATUS[code]);
  }

  static invalidRequest(message: string, fieldErrors?: FieldError[]): ApiError {
    return new ApiError('invalid_request', message, fieldErrors);
  }

  static validation(fieldErrors: FieldError[]): ApiError {
    const fields = [...new Set(fieldErrors.map((f) => f.field))].join(', ');
    return new ApiError('validation_error', `Invalid value for: ${fields}`, fieldErrors);
  }

  static unauthorized(message = 'Authentication required'): ApiError {
    return new ApiError('unauthorized', message);
  }

  static forbidden(message = 'You do not have permission to do this'): ApiError {
    return new ApiError('forbidden', message);
  }

  static userNotFound(): ApiError {
    return new ApiError('user_not_found', 'User not found');
  }

  static conflict(message: string): ApiError {
    return new ApiError('conflict', message);
  }

  static upstreamUnavailable(message: string): ApiError {
    return new ApiError('upstream_unavailable', message);
  }
}
