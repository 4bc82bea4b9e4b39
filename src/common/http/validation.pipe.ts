import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { ApiError, type FieldError } from '../errors/api-error.js';

/**
 * Constraints that say "this is not even the right kind of value". In a path or query string such a
 * failure is a malformed request (400 invalid_request); anything else, or anything in a body, is a value
 * the caller chose badly (422 validation_error), as the contract distinguishes them.
 */
const TYPE_CONSTRAINTS = new Set([
  'isInt',
  'isNumber',
  'isNumberString',
  'isBoolean',
  'isBooleanString',
  'isUUID',
  'isDate',
  'isDateString',
  'isISO8601',
  'isString',
  'isArray',
  'isObject',
]);

class ValidationFailure extends Error {
  constructor(readonly errors: ValidationError[]) {
    super('validation failed');
  }
}

export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = Object.values(error.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flattenValidationErrors(error.children ?? [], field)];
  });
}

function hasTypeError(errors: ValidationError[]): boolean {
  return errors.some(
    (e) =>
      Object.keys(e.constraints ?? {}).some((c) => TYPE_CONSTRAINTS.has(c)) || hasTypeError(e.children ?? []),
  );
}

/** The global pipe: whitelist + transform, unknown properties rejected, errors in the contract's shape. */
export class AppValidationPipe extends ValidationPipe {
  constructor() {
    super({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => new ValidationFailure(errors),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    if (metadata.type === 'body' && metadata.metatype && !this.isPrimitiveMetatype(metadata.metatype)) {
      // Raw bytes (an image content type, parsed for the avatar upload) sent to a JSON route: refuse the
      // type rather than validate each byte as an unknown property (a megabyte of field errors).
      if (Buffer.isBuffer(value)) {
        throw new ApiError('unsupported_media_type', 'This route takes a JSON body (application/json)');
      }
      // A JSON body that is an array, a string or null where an object is expected.
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        throw ApiError.invalidRequest('The request body must be a JSON object');
      }
    }
    try {
      return await super.transform(value, metadata);
    } catch (error) {
      if (!(error instanceof ValidationFailure)) throw error;
      const fieldErrors = flattenValidationErrors(error.errors);
      if (metadata.type !== 'body' && hasTypeError(error.errors)) {
        const where = metadata.type === 'param' ? 'path' : metadata.type;
        throw ApiError.invalidRequest(
          `Malformed ${where} parameter: ${[...new Set(fieldErrors.map((f) => f.field))].join(', ')}`,
          fieldErrors,
        );
      }
      throw ApiError.validation(fieldErrors);
    }
  }

  private isPrimitiveMetatype(metatype: unknown): boolean {
    return [String, Boolean, Number, Array, Object].includes(metatype as never);
  }
}
