import { createHmac, timingSafeEqual } from 'node:crypto';

/** Zitadel refuses to trust older signatures too; a captured request cannot be replayed after this. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

export type SignatureCheck =
  { ok: true } | { ok: false; reason: 'missing' | 'malformed' | 'expired' | 'mismatch' };

/**
 * Verifies Zitadel's Actions v2 `ZITADEL-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>…]` header: each
 * `v1` is a hex HMAC-SHA256, keyed with the target's signing key, over `"<t>.<raw body>"`. Several `v1`
 * values appear while a key is being rotated; one match suffices. The body must be the exact bytes
 * received (re-serialised JSON would not match), and digests are compared in constant time.
 */
export function verifyWebhookSignature(
  header: string | string[] | undefined,
  rawBody: Buffer,
  signingKey: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): SignatureCheck {
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!value) return { ok: false, reason: 'missing' };

  let timestamp: string | undefined;
  const signatures: Buffer[] = [];
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const item = part.slice(eq + 1).trim();
    if (key === 't') timestamp = item;
    // Anything else that is not 64 hex digits cannot be a SHA-256 digest; skip rather than throw.
    else if (key === 'v1' && /^[0-9a-fA-F]{64}$/.test(item)) signatures.push(Buffer.from(item, 'hex'));
  }
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp) || signatures.length === 0) {
    return { ok: false, reason: 'malformed' };
  }
  if (Math.abs(nowSeconds - Number(timestamp)) > SIGNATURE_TOLERANCE_SECONDS) {
    return { ok: false, reason: 'expired' };
  }

  const expected = createHmac('sha256', signingKey).update(`${timestamp}.`).update(rawBody).digest();
  // Check every candidate (no early exit), so timing does not reveal which one matched.
  let matched = false;
  for (const candidate of signatures) matched = timingSafeEqual(candidate, expected) || matched;
  return matched ? { ok: true } : { ok: false, reason: 'mismatch' };
}
