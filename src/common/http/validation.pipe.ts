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

/** The dotted path of the first string holding U+0000, which PostgreSQL text cannot store. */
function nulPath(value: unknown, path: string, depth = 0): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path || 'value' : undefined;
  // Deeper structures are refused by the DTOs anyway; this only has to find what could reach a column.
  if (depth > 8 || value === null || typeof value !== 'object') return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = nulPath(item, path ? `${path}.${key}` : key, depth + 1);
    if (found) return found;
  }
  return undefined;
}

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

const IGNORES_UNKNOWN = Symbol('ignoresUnknownProperties');

/**
 * For inputs we do not design: an OAuth 2.0 client must ignore unrecognized authorization-response
 * parameters (RFC 6749 §4.1.2), so the callback's query drops unknown ones instead of answering 422.
 */
export function IgnoreUnknownProperties(): ClassDecorator {
  return (target) => Reflect.defineMetadata(IGNORES_UNKNOWN, true, target);
}

const OPTIONS = {
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
  transformOptions: { enableImplicitConversion: false },
  validationError: { target: false, value: false },
  exceptionFactory: (errors: ValidationError[]) => new ValidationFailure(errors),
};

/** The global pipe: whitelist + transform, unknown properties rejected, errors in the contract's shape. */
export class AppValidationPipe extends ValidationPipe {
  private readonly lenient = new ValidationPipe({ ...OPTIONS, forbidNonWhitelisted: false });

  constructor() {
    super(OPTIONS);
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
    // A NUL character in any text would fail deep in PostgreSQL (500) or in Zitadel (503) after other
    // work was done; it is a bad value like any other, refused before anything happens.
    const nul = nulPath(value, metadata.type === 'body' ? '' : (metadata.data ?? ''));
    if (nul) {
      const fieldErrors = [{ field: nul, message: `${nul} must not contain NUL characters` }];
      // In a path it cannot be any id of ours: malformed, like any other non-UUID id.
      if (metadata.type === 'param')
        throw ApiError.invalidRequest(`Malformed path parameter: ${nul}`, fieldErrors);
      throw ApiError.validation(fieldErrors);
    }
    try {
      return metadata.metatype && Reflect.getMetadata(IGNORES_UNKNOWN, metadata.metatype)
        ? ((await this.lenient.transform(value, metadata)) as unknown)
        : ((await super.transform(value, metadata)) as unknown);
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
