import type { FastifyRequest } from 'fastify';
import type { KeyObject } from 'node:crypto';

const BEARER = /^Bearer (\S+)$/i;

/** The token of an `Authorization: Bearer <token>` header, or null (passport-jwt's jwtFromRequest). */
export function bearerToken(request: Pick<FastifyRequest, 'headers'>): string | null {
  return BEARER.exec(request.headers.authorization ?? '')?.[1] ?? null;
}

/** The JOSE header of a compact JWS, or null when it is not one; never throws. */
export function jwtHeader(token: string): Record<string, unknown> | null {
  const end = token.indexOf('.');
  if (end <= 0) return null;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, end), 'base64url').toString());
    return header !== null && typeof header === 'object' && !Array.isArray(header)
      ? (header as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** The payload of a compact JWS, unverified (only to route a token to its verifier), or null. */
export function jwtPayload(token: string): Record<string, unknown> | null {
  const [, payload] = token.split('.', 2);
  if (!payload) return null;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString());
    return claims !== null && typeof claims === 'object' && !Array.isArray(claims)
      ? (claims as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Headers that bring their own key or point at one: never honoured, refused before any crypto. */
export function carriesOwnKey(header: Record<string, unknown>): boolean {
  return 'jwk' in header || 'jku' in header || 'x5u' in header || 'x5c' in header;
}

/**
 * passport-jwt's types say a key is a string or a Buffer; jsonwebtoken takes a KeyObject as it is, which is
 * the point (a PEM string would be re-parsed on every request).
 */
export const asSecret = (key: KeyObject) => key as unknown as Buffer;

/** Why a strategy passed a token on; the guard answers 401 for these, never shows them to the client. */
export class NotThisStrategy extends Error {}
