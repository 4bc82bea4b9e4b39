import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { IdpContext } from './context.js';
import { unauthenticated } from './errors.js';

export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

/** Zitadel's APIs demand the service account's token on every call, before anything else is looked at. */
export function requireServiceAccount(scope: FastifyInstance, ctx: IdpContext): void {
  scope.addHook('onRequest', (request, _reply, done) => {
    const header = request.headers.authorization;
    if (!header) return done(unauthenticated('AUTH-7mr9m', 'auth header missing'));
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !sameSecret(match[1], ctx.serviceAccountToken)) {
      return done(unauthenticated('AUTH-7fs1e', 'Token is invalid'));
    }
    done();
  });
}
