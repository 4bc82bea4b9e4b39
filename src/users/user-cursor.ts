import { ApiError } from '../common/errors/api-error.js';
import type { CursorSigner } from '../common/http/cursor-signer.js';
import { UUID_PATTERN } from '../common/http/params.js';
import type { UserSort } from './dto/list-users.dto.js';

/**
 * Keyset cursors: the sort they belong to, the last row's sort value and its id, as JSON signed with
 * HMAC-SHA256 (CursorSigner). Opaque to callers: a cursor not minted here (forged, edited, or from another
 * deployment) is 400 before any of its contents reach SQL. Tied to the sort, so a cursor from another order
 * is refused (422) rather than misread.
 */
export function encodeCursor(signer: CursorSigner, sort: UserSort, value: string, id: string): string {
  return signer.sign(JSON.stringify([sort, value, id]));
}

const malformed = () =>
  ApiError.invalidRequest('Malformed cursor: pass next_cursor from a previous page as it is');

/** created_at::text as PostgreSQL prints it: `2026-11-25 14:48:07.505123+00`. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}(:\d{2})?$/;

export function decodeCursor(
  signer: CursorSigner,
  cursor: string,
  sort: UserSort,
): { value: string; id: string } {
  const payload = signer.verify(cursor);
  if (payload === undefined) throw malformed();
  let decoded: unknown;
  try {
    decoded = JSON.parse(payload);
  } catch {
    decoded = undefined;
  }
  if (
    !Array.isArray(decoded) ||
    decoded.length !== 3 ||
    typeof decoded[1] !== 'string' ||
    typeof decoded[2] !== 'string' ||
    !UUID_PATTERN.test(decoded[2]) ||
    decoded[1].length > 512 ||
    decoded[1].includes('\u0000')
  ) {
    throw malformed();
  }
  if (decoded[0] !== sort) {
    throw ApiError.validation([{ field: 'cursor', message: `cursor belongs to sort=${String(decoded[0])}` }]);
  }
  // Signed cursors hold what PostgreSQL printed; checked all the same, so that no key leak or future
  // change of format can reach a query with a value it cannot read (a 500).
  if (sort.endsWith('created_at') && !isTimestamp(decoded[1])) throw malformed();
  return { value: decoded[1], id: decoded[2] };
}

/** A timestamp as PostgreSQL prints it, whose every field is in range (2026-13-45 99:99:99 is not). */
function isTimestamp(text: string): boolean {
  if (!TIMESTAMP.test(text)) return false;
  const [year, month, day, hour, minute, second] = text.split(/[- :.+]/).map(Number);
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second
  );
}
