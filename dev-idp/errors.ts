import { Code, ConnectError } from '@connectrpc/connect';
import { CredentialsCheckErrorSchema, ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * An error as Zitadel's Connect API sends it: a code, the text with an error id such as `COMMAND-3M0fs`
 * that clients match on, and a `zitadel.v1.ErrorDetail` (or, for a wrong password, Zitadel's
 * `CredentialsCheckError` with the count of failed attempts).
 */
export class ZitadelError extends ConnectError {
  constructor(
    code: Code,
    readonly id: string,
    readonly text: string,
    failedAttempts?: number,
  ) {
    super(`${text} (${id})`, code, undefined, [
      failedAttempts === undefined
        ? { desc: ErrorDetailSchema, value: { id, message: text } }
        : { desc: CredentialsCheckErrorSchema, value: { id, message: text, failedAttempts } },
    ]);
    // The name stays 'ConnectError': Connect recognises its errors by it (ConnectError[Symbol.hasInstance]).
  }
}

export const invalidArgument = (id: string, text: string) => new ZitadelError(Code.InvalidArgument, id, text);
export const notFound = (id: string, text: string) => new ZitadelError(Code.NotFound, id, text);
export const alreadyExists = (id: string, text: string) => new ZitadelError(Code.AlreadyExists, id, text);
export const failedPrecondition = (id: string, text: string) =>
  new ZitadelError(Code.FailedPrecondition, id, text);
export const permissionDenied = (id: string, text: string) =>
  new ZitadelError(Code.PermissionDenied, id, text);
export const unauthenticated = (id: string, text: string) => new ZitadelError(Code.Unauthenticated, id, text);

/** What Zitadel's proto validation refuses before a request reaches a command. */
export function invalidRequest(what: string, field: string, problem: string): ZitadelError {
  return invalidArgument('DEVIDP-VALID', `invalid ${what}: ${field}: ${problem}`);
}

/** An OAuth 2.0 / OIDC protocol error (RFC 6749 §5.2), answered as `{error, error_description}`. */
export class OAuthError extends Error {
  constructor(
    readonly error: string,
    readonly description: string,
    readonly status = 400,
  ) {
    super(`${error}: ${description}`);
    this.name = 'OAuthError';
  }
}

/** Errors from fastify itself (bad JSON, wrong media type, body too large) carry a 4xx statusCode. */
function clientStatus(error: Error): number | undefined {
  const status = (error as Error & { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** Answers every error in this scope in OAuth's JSON form; a 401 for client authentication says how. */
export function useOAuthErrors(scope: FastifyInstance, logger: { warn(msg: string): void }): void {
  scope.setErrorHandler((error: Error, request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('Cache-Control', 'no-store');
    if (error instanceof OAuthError) {
      if (error.status === 401) void reply.header('WWW-Authenticate', 'Basic realm="dev-idp"');
      return reply.code(error.status).send({ error: error.error, error_description: error.description });
    }
    if (error instanceof ZitadelError && error.code === Code.InvalidArgument) {
      return reply.code(400).send({ error: 'invalid_request', error_description: error.text });
    }
    const status = clientStatus(error);
    if (status !== undefined) {
      return reply.code(status).send({ error: 'invalid_request', error_description: error.message });
    }
    logger.warn(`dev-idp: ${request.method} ${request.url} failed: ${error.stack ?? error.message}`);
    return reply.code(500).send({ error: 'server_error', error_description: 'internal error' });
  });
}
