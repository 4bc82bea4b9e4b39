import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { AddRouteConfig } from './route-config.js';
import { ApiError } from '../errors/api-error.js';

/**
 * The shape limits of every JSON body, checked right after parsing and before any validation: no real
 * body of this API comes near them (the largest, a settings update, has 8 members and depth 2), while
 * the work a body can cause downstream (class-transformer, class-validator, logging) grows with them.
 */
export const JSON_MAX_DEPTH = 32;
/** Object members plus array elements, over the whole body. */
export const JSON_MAX_MEMBERS = 1_000;

class BodyShapeError extends Error {}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const COMMA = 0x2c;

/**
 * One pass over the raw bytes, before JSON.parse builds anything: nesting depth and the number of
 * values inside containers (separating commas plus one per container), outside strings. Linear, no
 * allocation, about 1 ms per MB; a body past either limit never reaches JSON.parse, whose cost for a
 * wide object (V8 turns it into a dictionary) is what the limits are for.
 */
export function scanJsonShape(
  bytes: Buffer,
  limits = { maxDepth: JSON_MAX_DEPTH, maxMembers: JSON_MAX_MEMBERS },
): void {
  let depth = 0;
  let members = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > limits.maxDepth) {
        throw new BodyShapeError(`The request body nests deeper than ${limits.maxDepth} levels`);
      }
      members++;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    } else if (c === COMMA) {
      members++;
    }
    if (members > limits.maxMembers) {
      throw new BodyShapeError(`The request body has more than ${limits.maxMembers} members`);
    }
  }
}

/** Route config key for a route whose JSON bodies may be larger than the default (see JsonBodyLimit). */
const BODY_LIMIT_CONFIG = 'jsonBodyLimit';

/**
 * A larger JSON body limit for one route (e.g. a webhook whose sender decides the payload): the shape
 * limits still apply.
 */
export const JsonBodyLimit = (bytes: number): MethodDecorator =>
  AddRouteConfig({ [BODY_LIMIT_CONFIG]: bytes });

/**
 * The application's JSON parser, replacing the framework's: the body is read up to `bodyLimit` bytes (a
 * larger Content-Length is refused before a byte is read; 413), its depth and size are scanned in one
 * pass (400), then it is parsed by V8's JSON.parse (linear, and not recursive). Only then does the
 * validation pipe see it. Call before app.init().
 */
export function useJsonBodyParser(app: NestFastifyApplication, bodyLimit: number): void {
  // A route that declares its own limit (JsonBodyLimit) gets it as Fastify's per-route bodyLimit.
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRoute', (route) => {
      const limit = (route.config as Record<string, unknown> | undefined)?.[BODY_LIMIT_CONFIG];
      if (typeof limit === 'number') route.bodyLimit = limit;
    });
  app.useBodyParser('application/json', { bodyLimit }, (_request, body, done) => {
    if (body.length === 0) {
      done(ApiError.invalidRequest('The request body is empty but Content-Type is application/json'));
      return;
    }
    try {
      scanJsonShape(body);
    } catch (error) {
      done(ApiError.invalidRequest((error as Error).message));
      return;
    }
    let parsed: unknown;
    try {
      // A `__proto__` member becomes a plain own property here (JSON.parse never sets a prototype); the
      // validation pipe refuses it as an unknown key before anything copies the body.
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      done(ApiError.invalidRequest('The request body is not valid JSON'));
      return;
    }
    done(null, parsed);
  });
}
