import type { Type } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module.js';
import { ChangeFeedService } from './change-feed/change-feed.service.js';
import { CHANGE_BARRIER_CONFIG } from './change-feed/writes-no-cached-rows.decorator.js';
import { ERROR_STATUS, type ErrorCode } from './common/errors/error-code.js';
import { buildProblem, PROBLEM_CONTENT_TYPE } from './common/errors/problem-document.js';
import { AppLogger, createRootLogger, logAccess, withRequestContext } from './common/http/access-log.js';
import { ProblemFilter } from './common/errors/problem.filter.js';
import { useJsonBodyParser } from './common/http/json-body.js';
import { requestIdFor } from './common/http/request-id.js';
import { routeConfigOf } from './common/http/route-config.js';
import { applySecurityHeaders, securityHeaders } from './common/http/security-headers.js';
import { AppValidationPipe } from './common/http/validation.pipe.js';
import { createOpenApiDocument } from './common/openapi/openapi.js';
import type { AppConfig } from './config/app-config.js';

/**
 * Builds the fully configured application (not yet listening). main.ts, the tests and the OpenAPI
 * writer all go through here, so what they exercise is what production runs. `extraModules` lets a
 * test mount throwaway routes (e.g. one that throws) inside the real pipeline; `logDestination` lets
 * one read the log lines.
 */
export async function createApp(
  config: AppConfig,
  extraModules: Type[] = [],
  logDestination?: DestinationStream,
): Promise<NestFastifyApplication> {
  const problems = new ProblemFilter();
  const adapter = new FastifyAdapter({
    // The router answers an over-long path parameter (Fastify: 414 with its own JSON) or a malformed URL
    // before any hook or Nest filter runs; they leave as problem documents with a request id like the rest.
    frameworkErrors: (error: Error, request: FastifyRequest, reply: FastifyReply) => {
      applySecurityHeaders(reply.raw, isTls(request));
      void reply.header('X-Request-Id', request.id).header('Cache-Control', 'no-store');
      problems.send(error, request, reply);
    },
    // Node's HTTP parser refuses a request before Fastify sees one (headers over 16 KiB: 431, a malformed
    // request line: 400); those answers are problem documents with the security headers too.
    clientErrorHandler: rawClientError,
    bodyLimit: config.http.bodyLimitBytes,
    // request.ip honours X-Forwarded-For only from the proxies TRUST_PROXY names; otherwise the socket address.
    trustProxy: trustProxyOption(config.http.trustProxy),
    genReqId: requestIdFor,
    requestIdHeader: false,
    logger: false,
    // During shutdown, new requests get 503 while in-flight ones finish; idle keep-alive sockets close at once.
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  const fastify = adapter.getInstance();
  const logger = createRootLogger(config, logDestination);
  fastify.addHook('onRequest', (request, reply, done) => {
    void reply.header('X-Request-Id', request.id);
    applySecurityHeaders(reply.raw, isTls(request));
    // API answers carry tokens and personal data: no cache may keep them. A route that may be cached
    // (avatars) sets its own Cache-Control, which replaces this one.
    if (request.url.startsWith('/api/')) void reply.header('Cache-Control', 'no-store');
    // Lines logged while handling the request carry its id.
    withRequestContext(request, done);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    logAccess(logger, request, reply);
    done();
  });

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, logger, extraModules),
    adapter,
    {
      bufferLogs: true,
    },
  );
  app.useLogger(new AppLogger(app.get(Logger)));
  // Read-your-writes on this instance: a write's answer leaves only after the change notices of what it
  // committed have reached this instance's caches (see ChangeFeedService.barrier). A failed write
  // changed nothing cached, reads change nothing, and routes marked WritesNoCachedRows write other tables.
  const feed = app.get(ChangeFeedService);
  fastify.addHook('onSend', async (request, reply) => {
    if (
      !SAFE_METHODS.has(request.method) &&
      reply.statusCode < 400 &&
      routeConfigOf(request)[CHANGE_BARRIER_CONFIG] !== false
    ) {
      await feed.barrier();
    }
  });
  useJsonBodyParser(app, config.http.jsonBodyLimitBytes);

  app.useGlobalFilters(problems);
  app.useGlobalPipes(new AppValidationPipe());

  SwaggerModule.setup('docs', app, await createOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true },
  });
  return app;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Over TLS: the socket's own, or `X-Forwarded-Proto: https` from a proxy TRUST_PROXY trusts. */
const isTls = (request: FastifyRequest) => request.protocol === 'https';

/** Fastify's clientErrorHandler, answering in the API's own shape (see ProblemFilter). */
function rawClientError(error: Error & { code?: string }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const code: ErrorCode =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'invalid_request';
  const status = ERROR_STATUS[code];
  const requestId = randomUUID();
  const message = {
    headers_too_large: 'The request headers are too large',
    request_timeout: 'The request took too long to arrive',
    invalid_request: 'The request is not valid HTTP',
  }[code];
  const body = JSON.stringify(buildProblem({ code, status, message, requestId }));
  if (socket.writable) {
    const headers = [
      ...securityHeaders(false),
      ['Content-Type', PROBLEM_CONTENT_TYPE],
      ['Content-Length', String(Buffer.byteLength(body))],
      ['Cache-Control', 'no-store'],
      ['X-Request-Id', requestId],
      ['Connection', 'close'],
    ];
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${headers.map(([n, v]) => `${n}: ${v}`).join('\r\n')}\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** A hop count as the function Fastify builds for one (its Nest typing takes no number). */
function trustProxyOption(trustProxy: AppConfig['http']['trustProxy']) {
  return typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy;
}
