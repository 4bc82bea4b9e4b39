import { ApiError } from '../errors/api-error.js';

/** A strong entity tag from a row's version column (If-Match compares strong tags only, RFC 9110 §13.1.1). */
export const versionEtag = (version: number): string => `"v${version}"`;

/**
 * Optimistic concurrency for writes: no If-Match header → no condition; `*` → any current version;
 * otherwise one of the listed tags must be the current one, or the write is refused with 412.
 */
export function assertIfMatch(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined) return;
  const current = versionEtag(version);
  const tags = ifMatch.split(',').map((tag) => tag.trim());
  if (tags.includes('*') || tags.includes(current)) return;
  throw new ApiError(
    'precondition_failed',
    'The user was changed since you read it (If-Match does not match its ETag); read it again and retry',
  );
}
