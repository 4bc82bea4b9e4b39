import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';

/** The gRPC status codes Zitadel's API returns, and the HTTP status grpc-gateway maps each to. */
export const GrpcCode = {
  InvalidArgument: 3,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  FailedPrecondition: 9,
  Internal: 13,
  Unauthenticated: 16,
} as const;
export type GrpcCode = (typeof GrpcCode)[keyof typeof GrpcCode];

const HTTP_STATUS: Record<GrpcCode, number> = {
  3: 400,
  5: 404,
  6: 409,
  7: 403,
  9: 400,
  13: 500,
  16: 401,
};

/**
 * An error as Zitadel reports it: a gRPC code, an error id such as `COMMAND-3M0fs` that clients match on,
 * and a human text. The body is grpc-gateway's status JSON with Zitadel's ErrorDetail, so a client written
 * against real Zitadel parses it unchanged.
 */
export class ZitadelError extends Error {
  constructor(
    readonly code: GrpcCode,
    readonly id: string,
    readonly text: string,
    /** Replaces the detail's @type and adds members, as Zitadel's CredentialsCheckError does. */
    readonly detail?: { type: string; fields: Record<string, unknown> },
  ) {
    super(`${text} (${id})`);
    this.name = 'ZitadelError';
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  toBody(): ZitadelErrorBody {
    return {
      code: this.code,
      message: `${this.text} (${this.id})`,
      details: [
        {
          '@type': this.detail?.type ?? 'type.googleapis.com/zitadel.v1.ErrorDetail',
          id: this.id,
          message: this.text,
          ...this.detail?.fields,
        },
      ],
    };
  }
}

export interface ZitadelErrorBody {
  code: number;
  message: string;
  details: Array<Record<string, unknown> & { '@type': string; id: string; message: string }>;
}

export const invalidArgument = (id: string, text: string) =>
  new ZitadelError(GrpcCode.InvalidArgument, id, text);
export const notFound = (id: string, text: string) => new ZitadelError(GrpcCode.NotFound, id, text);
export const alreadyExists = (id: string, text: string) => new ZitadelError(GrpcCode.AlreadyExists, id, text);
export const failedPrecondition = (id: string, text: string) =>
  new ZitadelError(GrpcCode.FailedPrecondition, id, text);
export const permissionDenied = (id: string, text: string) =>
  new ZitadelError(GrpcCode.PermissionDenied, id, text);
export const unauthenticated = (id: string, text: string) =>
  new ZitadelError(GrpcCode.Unauthenticated, id, text);

/**
 * Validates a request body (or path/query) and turns any mismatch into InvalidArgument, the way Zitadel's
 * proto validation rejects a request before it reaches a command.
 */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown, what: string): z.output<T> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  throw invalidArgument('DEVIDP-VALID', `invalid ${what}: ${path}${issue?.message ?? 'invalid input'}`);
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

interface LoggerLike {
  warn(msg: string): void;
}

/** Errors from fastify itself (bad JSON, wrong media type, body too large) carry a 4xx statusCode. */
function clientStatus(error: Error): number | undefined {
  const status = (error as Error & { statusCode?: unknown }).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}

/** Answers every error in this scope as Zitadel would: a gRPC-gateway status body, never a stack. */
export function useZitadelErrors(scope: FastifyInstance, logger: LoggerLike): void {
  scope.setErrorHandler((error: Error, request: FastifyRequest, reply: FastifyReply) => {
    if (error instanceof ZitadelError) return reply.code(error.httpStatus).send(error.toBody());
    const status = clientStatus(error);
    if (status !== undefined) {
      const body = invalidArgument('DEVIDP-REQ', error.message).toBody();
      return reply.code(status).send(body);
    }
    logger.warn(`dev-idp: ${request.method} ${request.url} failed: ${error.stack ?? error.message}`);
    return reply
      .code(500)
      .send(new ZitadelError(GrpcCode.Internal, 'DEVIDP-INTERNAL', 'Internal error').toBody());
  });
}

/** Answers every error in this scope in OAuth's JSON form; a 401 for client authentication says how. */
export function useOAuthErrors(scope: FastifyInstance, logger: LoggerLike): void {
  scope.setErrorHandler((error: Error, request: FastifyRequest, reply: FastifyReply) => {
    void reply.header('Cache-Control', 'no-store');
    if (error instanceof OAuthError) {
      if (error.status === 401) void reply.header('WWW-Authenticate', 'Basic realm="dev-idp"');
      return reply.code(error.status).send({ error: error.error, error_description: error.description });
    }
    if (error instanceof ZitadelError && error.code === GrpcCode.InvalidArgument) {
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
