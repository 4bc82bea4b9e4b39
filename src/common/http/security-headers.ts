import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';

/** Swagger UI at /docs: its bundle is served from here; it needs inline styles and data: images. */
const DIRECTIVES = {
  defaultSrc: ["'self'"],
  styleSrc: ["'self'", "'unsafe-inline'"],
  imgSrc: ["'self'", 'data:'],
  scriptSrc: ["'self'"],
};

/**
 * Helmet's headers, computed once: helmet only sets fixed headers here (no nonces), so its middleware is
 * run against a recording response and the result is reused for every response, including the ones
 * written before any hook runs (router errors, a raw 431). Two sets: HSTS and CSP's
 * `upgrade-insecure-requests` only for requests that arrived over TLS (the socket's, or a trusted proxy's
 * `X-Forwarded-Proto: https`), since over plain HTTP the latter makes browsers fetch /docs' assets over
 * https and the page stays blank, and the former means nothing (RFC 6797 §8.1).
 */
function helmetHeaders(tls: boolean): ReadonlyArray<[string, string]> {
  const recorded = new Map<string, string>();
  const response = {
    setHeader: (name: string, value: string | number | string[]) => recorded.set(name, String(value)),
    removeHeader: (name: string) => recorded.delete(name),
  };
  helmet({
    contentSecurityPolicy: { directives: { ...DIRECTIVES, upgradeInsecureRequests: tls ? [] : null } },
    strictTransportSecurity: tls ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  })({} as IncomingMessage, response as unknown as ServerResponse, () => undefined);
  return [...recorded];
}

const PLAIN = helmetHeaders(false);
const TLS = helmetHeaders(true);

export function securityHeaders(tls: boolean): ReadonlyArray<[string, string]> {
  return tls ? TLS : PLAIN;
}

/** Sets the security headers on a raw response (they survive whatever Fastify or Nest send after). */
export function applySecurityHeaders(response: ServerResponse, tls: boolean): void {
  for (const [name, value] of securityHeaders(tls)) response.setHeader(name, value);
  response.removeHeader('X-Powered-By');
}
