import helmet from '@fastify/helmet';
import type { Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module.js';
import { AppLogger, trackForAccessLog } from './common/http/access-log.js';
import { ProblemFilter } from './common/errors/problem.filter.js';
import { requestIdFor } from './common/http/request-id.js';
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
      void reply.header('X-Request-Id', request.id);
      problems.send(error, request, reply);
    },
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
  fastify.addHook('onRequest', (request, reply, done) => {
    // Expose the id to pino-http (which sees only the raw request) and to the caller.
    (request.raw as typeof request.raw & { id: string }).id = String(request.id);
    trackForAccessLog(request);
    void reply.header('X-Request-Id', request.id);
    done();
  });

  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config, extraModules, logDestination),
    adapter,
    {
      bufferLogs: true,
    },
  );
  app.useLogger(new AppLogger(app.get(Logger)));

  app.useGlobalFilters(problems);
  app.useGlobalPipes(new AppValidationPipe());

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // Swagger UI at /docs: its bundle is served from here; it needs inline styles and data: images.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        scriptSrc: ["'self'"],
      },
    },
  });

  SwaggerModule.setup('docs', app, await createOpenApiDocument(app), {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true },
  });
  return app;
}

/** A hop count as the function Fastify builds for one (its Nest typing takes no number). */
function trustProxyOption(trustProxy: AppConfig['http']['trustProxy']) {
  return typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy;
}
