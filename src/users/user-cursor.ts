import { ApiError } from '../common/errors/api-error.js';
import { UUID_PATTERN } from '../common/http/params.js';
import type { UserSort } from './dto/list-users.dto.js';

/**
 * Keyset cursors: the sort they belong to, the last row's sort value and its id, as base64url JSON.
 * Opaque to callers; tied to the sort so a cursor from another order is refused rather than misread.
 */
export function encodeCursor(sort: UserSort, value: string, id: string): string {
  return Buffer.from(JSON.stringify([sort, value, id])).toString('base64url');
}

/** created_at::text as PostgreSQL prints it: `2026-11-25 14:48:07.505123+00`. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/;

export function decodeCursor(cursor: string, sort: UserSort): { value: string; id: string } {
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    decoded = undefined;
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 3 ||
    typeof decoded[1] !== 'string' ||
    typeof decoded[2] !== 'string' ||
    !UUID_PATTERN.test(decoded[2]) ||
    decoded[1].length > 512
  ) {
    throw ApiError.invalidRequest('Malformed cursor: pass next_cursor from a previous page as it is');
  }
  if (decoded[0] !== sort) {
    throw ApiError.validation([{ field: 'cursor', message: `cursor belongs to sort=${String(decoded[0])}` }]);
  }
  if (sort.endsWith('created_at') && !TIMESTAMP.test(decoded[1])) {
    throw ApiError.invalidRequest('Malformed cursor: pass next_cursor from a previous page as it is');
  }
  return { value: decoded[1], id: decoded[2] };
}
