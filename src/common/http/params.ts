import { ParseUUIDPipe } from '@nestjs/common';
import { ApiError } from '../errors/api-error.js';

/** For `:id`-style path parameters: a malformed id is a malformed request (400), not a missing resource. */
export const uuidParam = (name: string) =>
  new ParseUUIDPipe({
    exceptionFactory: () => ApiError.invalidRequest(`Malformed ${name}: expected a UUID`),
  });
