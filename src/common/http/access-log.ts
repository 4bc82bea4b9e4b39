import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestMethod, type LoggerService } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Params } from 'nestjs-pino';
import type { DestinationStream, Level } from 'pino';
import type { AppConfig } from '../../config/app-config.js';

/**
 * The access log: one line per request, written by pino-http (through nestjs-pino) when the response
 * has been sent, with the request id, method, path (never the query string: it can carry codes, cursors
 * and search terms), route template, status, duration and the caller's user id when one was identified.
 *
 *   {"level":30,"request_id":"…","req":{"method":"GET","url":"/api/users/6f…"},"route":"/api/users/:id",
 *    "user_id":"0c…","res":{"status_code":200},"duration_ms":4,"msg":"GET /api/users/:id 200"}
 *
 * Health and metrics requests log at debug (probes would otherwise drown the rest), 5xx at error.
 * Lines written while handling a request (Nest's Logger, the error filter) carry the same request_id.
 */

/**
 * pino-http sees only Node's request; the route template and the principal live on Fastify's request.
 * The app's onRequest hook links the two here, and the line is written after the guard has run.
 */
type AccessLogFastifyRequest = FastifyRequest & { user?: { userId?: string | null } };
const fastifyRequests = new WeakMap<IncomingMessage, AccessLogFastifyRequest>();

export function trackForAccessLog(request: FastifyRequest): void {
  fastifyRequests.set(request.raw, request);
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

interface AccessLogRequest extends IncomingMessage {
  originalUrl?: string;
}

function pathOf(request: AccessLogRequest): string {
  const url = request.originalUrl ?? request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** The route template and the caller, read once the response is complete. */
function accessContext(request: IncomingMessage): { route: string; user_id?: string } {
  const fastifyRequest = fastifyRequests.get(request);
  const route = fastifyRequest?.routeOptions.url ?? 'unmatched';
  const userId = fastifyRequest?.user?.userId;
  return userId ? { route, user_id: userId } : { route };
}

function levelFor(request: IncomingMessage, response: ServerResponse, error?: Error): Level {
  if (error || response.statusCode >= 500) return 'error';
  return QUIET_PATHS.test(pathOf(request)) ? 'debug' : 'info';
}

function message(request: IncomingMessage, response: ServerResponse): string {
  return `${request.method} ${accessContext(request).route} ${response.statusCode}`;
}

export function loggerParams(config: AppConfig, destination?: DestinationStream): Params {
  const pretty = !destination && config.nodeEnv !== 'production' && process.stdout.isTTY && hasPinoPretty();
  const options: Params['pinoHttp'] = {
    level: config.log.level,
    // Fastify assigned the id (echoed or generated) before any middleware runs; log under the same one.
    genReqId: (request: IncomingMessage) => (request as IncomingMessage & { id: string }).id,
    customAttributeKeys: { reqId: 'request_id', responseTime: 'duration_ms' },
    // Lines logged inside a request carry its request_id, not a copy of the whole request.
    quietReqLogger: true,
    serializers: {
      req: (request: { method: string; raw: AccessLogRequest }) => ({
        method: request.method,
        url: pathOf(request.raw),
      }),
      res: (response: { statusCode: number }) => ({ status_code: response.statusCode }),
    },
    // Called when the middleware runs and again when the response is complete; only the second call
    // knows the caller, and returning nothing the first time keeps the keys from appearing twice.
    customProps: (request, response) => (response.writableEnded ? accessContext(request) : {}),
    customLogLevel: levelFor,
    customSuccessMessage: message,
    customErrorMessage: message,
    redact: { paths: REDACTED_PATHS, censor: '[Redacted]' },
    transport: pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
  };
  return {
    pinoHttp: destination ? [options, destination] : options,
    // nestjs-pino's default route pattern ('{/*splat}') reaches @fastify/middie as '/{/*splat}' under
    // Nest 12 and matches no request: the logger middleware never ran. This one matches every path.
    forRoutes: [{ path: '/{*path}', method: RequestMethod.ALL }],
  };
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
