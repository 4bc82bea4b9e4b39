import { AsyncLocalStorage } from 'node:async_hooks';
import { type LoggerService } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Params } from 'nestjs-pino';
import { pino, type DestinationStream, type Level, type Logger, type LoggerOptions } from 'pino';
import type { AppConfig } from '../../config/app-config.js';

/**
 * The access log: one line per request, written from Fastify's onResponse hook when the response has been
 * sent, with the request id, method, path (never the query string: it can carry codes, cursors and search
 * terms), route template, status, duration and the caller's user id when one was identified.
 *
 *   {"level":30,"request_id":"…","req":{"method":"GET","url":"/api/users/6f…"},"route":"/api/users/:id",
 *    "user_id":"0c…","res":{"status_code":200},"duration_ms":4,"msg":"GET /api/users/:id 200"}
 *
 * Health and metrics requests log at debug (probes would otherwise drown the rest), 5xx at error.
 * Lines written while handling a request (Nest's Logger, the error filter) carry the same request_id.
 *
 * Why hooks and not pino-http: pino-http ran as a Nest middleware (through @fastify/middie) and built a
 * child logger per request even when its lines were below the level; that was about a sixth of the
 * service's CPU per request in the benchmark's profile (docs/proof.md). Here a request costs one
 * AsyncLocalStorage frame holding its id, and a line is built only when its level is enabled.
 */

type AccessLogRequest = FastifyRequest & { user?: { userId?: string | null } };

/** The request being handled, for the request_id of every line logged while handling it. */
const requestContext = new AsyncLocalStorage<{ requestId: string }>();

/** Runs the rest of the request's handling with its id in context (Fastify's onRequest hook calls this). */
export function withRequestContext(request: FastifyRequest, next: () => void): void {
  requestContext.run({ requestId: String(request.id) }, next);
}

/** Routes whose lines go to debug: load-balancer probes and Prometheus scrapes. */
const QUIET_PATHS = /^\/(health|metrics)(\/|\?|$)/;

/** What never reaches a log line, whichever code logs a request, a response or a body. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-zitadel-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.password',
  '*.session_token',
  '*.access_token',
  '*.refresh_token',
  '*.id_token',
  '*.token',
];

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Writes the request's access line, if its level is enabled (Fastify's onResponse hook calls this). */
export function logAccess(logger: Logger, request: AccessLogRequest, reply: FastifyReply): void {
  const status = reply.statusCode;
  const path = pathOf(request.url);
  const level: Level = status >= 500 ? 'error' : QUIET_PATHS.test(path) ? 'debug' : 'info';
  if (!logger.isLevelEnabled(level)) return;
  const route = request.routeOptions.url ?? 'unmatched';
  const userId = request.user?.userId;
  logger[level](
    {
      request_id: String(request.id),
      req: { method: request.method, url: path },
      route,
      ...(userId ? { user_id: userId } : {}),
      res: { status_code: status },
      duration_ms: Math.round(reply.elapsedTime),
    },
    `${request.method} ${route} ${status}`,
  );
}

/** The one pino logger of the application: Nest's lines (through nestjs-pino) and the access log. */
export function createRootLogger(config: AppConfig, destination?: DestinationStream): Logger {
  const pretty = !destination && config.nodeEnv !== 'production' && process.stdout.isTTY && hasPinoPretty();
  const options: LoggerOptions = {
    level: config.log.level,
    // Lines logged inside a request carry its request_id (the access line names it itself).
    mixin: () => {
      const context = requestContext.getStore();
      return context ? { request_id: context.requestId } : {};
    },
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  };
  return destination ? pino(options, destination) : pino(options);
}

/**
 * nestjs-pino formats Nest's Logger calls onto the root logger. Its pino-http middleware is not mounted
 * (no routes): the access log is written by logAccess.
 */
export function loggerParams(logger: Logger): Params {
  return { pinoHttp: { logger }, forRoutes: [] };
}

/** pino-pretty is a development dependency: a production install (npm ci --omit=dev) has none. */
function hasPinoPretty(): boolean {
  try {
    import.meta.resolve('pino-pretty');
    return true;
  } catch {
    return false;
  }
}

/** Nest's start-up chatter, one line per module, controller and route: useful when debugging only. */
const START_UP_CONTEXTS = new Set(['InstanceLoader', 'RoutesResolver', 'RouterExplorer']);

/**
 * The application logger: nestjs-pino's, with Nest's per-module and per-route start-up lines
 * ("Mapped {/api/users/:id, GET} route") moved from info to debug.
 */
export class AppLogger implements LoggerService {
  constructor(private readonly logger: LoggerService) {}

  log(message: unknown, ...optionalParams: unknown[]): void {
    const context = optionalParams.at(-1);
    if (typeof context === 'string' && START_UP_CONTEXTS.has(context))
      this.logger.debug?.(message, ...optionalParams);
    else this.logger.log(message, ...optionalParams);
  }
  error(message: unknown, ...optionalParams: unknown[]): void {
    this.logger.error(message, ...optionalParams);
  }
  warn(message: unknown, ...optionalParams: unknown[]): void {
    this.logger.warn(message, ...optionalParams);
  }
  debug(message: unknown, ...optionalParams: unknown[]): void {
    this.logger.debug?.(message, ...optionalParams);
  }
  verbose(message: unknown, ...optionalParams: unknown[]): void {
    this.logger.verbose?.(message, ...optionalParams);
  }
  fatal(message: unknown, ...optionalParams: unknown[]): void {
    this.logger.fatal?.(message, ...optionalParams);
  }
}
