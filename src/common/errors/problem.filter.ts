import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QueryFailedError } from 'typeorm';
import { ApiError } from './api-error.js';
import { codeForStatus, ERROR_STATUS, type ErrorCode } from './error-code.js';
import { buildProblem, PROBLEM_CONTENT_TYPE, type ProblemDocument } from './problem-document.js';

/** The longest request path echoed as a problem's `instance` (openapi.json documents the bound). */
export const MAX_INSTANCE_LENGTH = 2048;

/** Fastify's own 4xx errors, by code, with texts written for API clients. */
const FASTIFY_ERRORS: Record<string, { code: ErrorCode; message: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_request', message: 'The request body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'invalid_request',
    message: 'The request body is empty but Content-Type is application/json',
  },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'payload_too_large', message: 'The request body is too large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: 'Unsupported Content-Type' },
  // The router's own rejections (see frameworkErrors in app.ts): a path parameter over Fastify's
  // maxParamLength (100) cannot be any id of ours, so it is a malformed parameter like any non-UUID.
  FST_ERR_MAX_PARAM_LENGTH: { code: 'invalid_request', message: 'Malformed path parameter: too long' },
  FST_ERR_BAD_URL: { code: 'invalid_request', message: 'The URL is not valid' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'invalid_request',
    message: 'Content-Length does not match the body',
  },
};

/** PostgreSQL and driver conditions that mean "the database is not reachable right now", not a bug. */
const DATABASE_UNAVAILABLE = [
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE/,
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /the database system is (starting up|shutting down)/i,
  // pg's client-side query_timeout: the server went silent mid-query.
  /Query read timeout/i,
];
/**
 * SQLSTATEs of the same kind: connection exceptions (08…), too many connections, the statement timeout,
 * an administrator or crash shutdown, a server that cannot accept connections yet.
 */
const DATABASE_UNAVAILABLE_STATES = /^(08...|53300|57014|57P0[1-3])$/;

interface ErrorLike {
  code?: unknown;
  message?: unknown;
}

/**
 * The single place where failures become HTTP responses. Nest also routes Fastify's own errors (body
 * parsing, size limits) here, wrapped as HttpExceptions with the original as `cause`, so every error,
 * wherever it arises, leaves as the same problem document with the request id.
 */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    this.send(exception, http.getRequest<FastifyRequest>(), http.getResponse<FastifyReply>());
  }

  send(exception: unknown, request: FastifyRequest, reply: FastifyReply): void {
    const problem = this.toProblem(exception, request);
    if (problem.status >= 500 && problem.error === 'internal_error') {
      this.logger.error({ err: exception, request_id: request.id }, 'Unhandled error');
    } else if (problem.status >= 500) {
      this.logger.warn({ err: exception, request_id: request.id }, problem.message);
    }
    if (reply.sent) return;
    void reply
      .status(problem.status)
      .header('Content-Type', PROBLEM_CONTENT_TYPE)
      .send(JSON.stringify(problem));
  }

  toProblem(exception: unknown, request: FastifyRequest): ProblemDocument {
    // `instance` is optional: a path longer than the documented bound is not echoed back.
    const path = request.url?.split('?')[0];
    const base = {
      requestId: String(request.id),
      instance: path && path.length <= MAX_INSTANCE_LENGTH ? path : undefined,
    };

    if (exception instanceof ApiError) {
      return buildProblem({
        ...base,
        code: exception.code,
        status: exception.getStatus(),
        message: exception.message,
        fieldErrors: exception.fieldErrors,
      });
    }
    const fastifyError = this.fastifyError(exception);
    if (fastifyError) {
      const { code, message } = fastifyError;
      return buildProblem({ ...base, code, status: ERROR_STATUS[code], message });
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const code = codeForStatus(status);
      return buildProblem({
        ...base,
        code,
        status,
        message: this.httpExceptionMessage(exception, code, request),
      });
    }
    if (exception instanceof QueryFailedError) {
      // A unique violation that slipped past a service's own check is still a conflict, not a crash.
      if ((exception.driverError as { code?: string } | undefined)?.code === '23505') {
        return buildProblem({
          ...base,
          code: 'conflict',
          status: 409,
          message: 'The resource already exists',
        });
      }
    }
    if (this.isDatabaseUnavailable(exception)) {
      return buildProblem({
        ...base,
        code: 'upstream_unavailable',
        status: 503,
        message: 'The database is unavailable; try again shortly',
      });
    }
    return buildProblem({
      ...base,
      code: 'internal_error',
      status: 500,
      message: 'An internal error occurred',
    });
  }

  private fastifyError(exception: unknown): { code: ErrorCode; message: string } | undefined {
    const original = (exception instanceof HttpException ? exception.cause : exception) as
      ErrorLike | undefined;
    return typeof original?.code === 'string' ? FASTIFY_ERRORS[original.code] : undefined;
  }

  private httpExceptionMessage(exception: HttpException, code: ErrorCode, request: FastifyRequest): string {
    // Nest's router reports unknown routes as "Cannot GET /x"; say it in the API's own words.
    if (code === 'not_found' && /^Cannot [A-Z]+ /.test(exception.message)) {
      return `No route matches ${request.method} ${request.url.split('?')[0]}`;
    }
    if (exception.getStatus() >= 500) return 'An internal error occurred';
    return exception.message;
  }

  private isDatabaseUnavailable(exception: unknown): boolean {
    const { code, message } = (exception ?? {}) as ErrorLike;
    const state = (exception instanceof QueryFailedError ? (exception.driverError as ErrorLike) : undefined)
      ?.code;
    if (typeof state === 'string' && DATABASE_UNAVAILABLE_STATES.test(state)) return true;
    const text = `${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`;
    return DATABASE_UNAVAILABLE.some((pattern) => pattern.test(text));
  }
}
