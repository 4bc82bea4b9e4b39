import { createRequire } from 'node:module';
import { ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { getMetadataStorage } from 'class-validator';
import { ApiError, type FieldError } from '../errors/api-error.js';

/**
 * class-transformer's registry of @Type() declarations, to follow nested DTOs. Not in its public entry
 * point; @nestjs/mapped-types reads it from the same place.
 */
const typeStorage = (
  createRequire(import.meta.url)('class-transformer/cjs/storage') as {
    defaultMetadataStorage: {
      findTypeMetadata(target: object, property: string): { typeFunction: () => unknown } | undefined;
    };
  }
).defaultMetadataStorage;

interface DtoShape {
  /** The properties the class declares (any class-validator decorator), as class-validator's whitelist sees them. */
  keys: Set<string>;
  /** Properties holding a nested DTO (@Type(() => Class) on a class with validators of its own). */
  nested: Map<string, DtoShape>;
}

const shapes = new WeakMap<object, DtoShape | null>();

/** The declared shape of a DTO class; null for a class without validators (nothing to check). */
function dtoShape(metatype: object): DtoShape | null {
  const known = shapes.get(metatype);
  if (known !== undefined) return known;
  const metadatas = getMetadataStorage().getTargetValidationMetadatas(metatype as never, '', true, false);
  if (!metadatas.length) {
    shapes.set(metatype, null);
    return null;
  }
  const shape: DtoShape = { keys: new Set(metadatas.map((m) => m.propertyName)), nested: new Map() };
  shapes.set(metatype, shape);
  for (const key of shape.keys) {
    const nestedType = typeStorage.findTypeMetadata(metatype, key)?.typeFunction();
    const nestedShape = typeof nestedType === 'function' ? dtoShape(nestedType) : null;
    if (nestedShape) shape.nested.set(key, nestedShape);
  }
  return shape;
}

const MAX_LISTED_UNKNOWN = 20;
/**
 * An unknown key is named in the answer up to this length: a 15 KB key (a form body sent to a JSON route)
 * must not make a problem document longer than openapi.json allows (field 200, detail 2000 characters).
 */
const MAX_LISTED_KEY_LENGTH = 64;
const listedKey = (field: string) =>
  field.length > MAX_LISTED_KEY_LENGTH ? `${field.slice(0, MAX_LISTED_KEY_LENGTH - 1)}…` : field;

/**
 * Own keys the DTO does not declare, by dotted path, nested DTOs included. A Set of declared names, not
 * the object lookup class-validator's whitelist does, so keys named like Object.prototype's members
 * (`toString`, `constructor`, `hasOwnProperty`...) are unknown like any other. Runs before class-transformer,
 * whose cost grows with the number of keys; the body's size and shape are already bounded by the parser.
 */
function unknownKeys(value: Record<string, unknown>, shape: DtoShape, path: string, found: string[]): void {
  for (const key of Object.keys(value)) {
    if (found.length >= MAX_LISTED_UNKNOWN) return;
    const field = path ? `${path}.${key}` : key;
    if (!shape.keys.has(key)) {
      found.push(field);
      continue;
    }
    const nested = shape.nested.get(key);
    const item = value[key];
    if (!nested || item === null || typeof item !== 'object') continue;
    if (Array.isArray(item)) {
      item.forEach((element, i) => {
        if (element !== null && typeof element === 'object' && !Array.isArray(element)) {
          unknownKeys(element as Record<string, unknown>, nested, `${field}.${i}`, found);
        }
      });
    } else {
      unknownKeys(item as Record<string, unknown>, nested, field, found);
    }
  }
}

/** Only the declared top-level keys: for inputs whose unknown parameters are ignored, not refused. */
function declaredOnly(value: Record<string, unknown>, shape: DtoShape): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const key of Object.keys(value)) if (shape.keys.has(key)) kept[key] = value[key];
  return kept;
}

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

const OPTIONAL_BODY = Symbol('optionalBody');

/**
 * A body every field of which is optional, that may also be left out altogether (`DELETE /api/users/me`):
 * no body is validated as `{}`. Any body that is sent is validated as usual.
 */
export function OptionalBody(): ClassDecorator {
  return (target) => Reflect.defineMetadata(OPTIONAL_BODY, true, target);
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
    if (
      metadata.type === 'body' &&
      value === undefined &&
      metadata.metatype &&
      Reflect.getMetadata(OPTIONAL_BODY, metadata.metatype)
    ) {
      value = {};
    }
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
    const shape =
      metadata.metatype && !this.isPrimitiveMetatype(metadata.metatype) ? dtoShape(metadata.metatype) : null;
    const ignoresUnknown = Boolean(
      metadata.metatype && Reflect.getMetadata(IGNORES_UNKNOWN, metadata.metatype),
    );
    if (shape && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      if (ignoresUnknown) {
        value = declaredOnly(value as Record<string, unknown>, shape);
      } else {
        const unknown: string[] = [];
        unknownKeys(value as Record<string, unknown>, shape, '', unknown);
        if (unknown.length) {
          throw ApiError.validation(
            unknown.map((field) => ({
              field: listedKey(field),
              message: `property ${listedKey(field.split('.').pop()!)} should not exist`,
            })),
          );
        }
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
      return ignoresUnknown
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
