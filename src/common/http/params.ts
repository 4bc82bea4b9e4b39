import { ParseUUIDPipe } from '@nestjs/common';
import { ApiError } from '../errors/api-error.js';

/** A UUID in its canonical 8-4-4-4-12 hex form, any case (what PostgreSQL's uuid type prints and reads). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** For `:id`-style path parameters: a malformed id is a malformed request (400), not a missing resource. */
export const uuidParam = (name: string) =>
  new ParseUUIDPipe({
    exceptionFactory: () => ApiError.invalidRequest(`Malformed ${name}: expected a UUID`),
  });
