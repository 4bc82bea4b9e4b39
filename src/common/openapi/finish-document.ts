import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { OpenAPIObject } from '@nestjs/swagger';
import { AVATAR_MAX_BYTES } from '../../users/avatars/image-body.js';
import { codeForStatus } from '../errors/error-code.js';
import { MAX_INSTANCE_LENGTH } from '../errors/problem.filter.js';

/**
 * The last step of building the OpenAPI document: what holds for every operation or schema is written here
 * once, rather than on each route and DTO, so that the document passes Redocly's and Spectral's (oas and
 * OWASP) rules with the facts of this service (see .spectral.yaml, redocly.yaml).
 */

/** Marks an operation that the rate limiter skips (health, metrics): it gets no RateLimit headers. */
export const NOT_RATE_LIMITED = 'x-rate-limit-exempt';

export const TAGS = [
  {
    name: 'authentication',
    description: 'Login (password or OIDC), logout, registration and email verification',
  },
  {
    name: 'users',
    description: 'Profiles, the user list, admin writes (create, update, suspend, delete) and avatars',
  },
  {
    name: 'account',
    description:
      'Self-service: forgotten password, password and email changes, resending a code, export and erasure',
  },
  { name: 'sessions', description: "A user's sessions: list them, end one or all" },
  {
    name: 'settings',
    description: "A user's preferences (theme, language, timezone, notifications, default bot)",
  },
  {
    name: 'zitadel',
    description: 'Signed Actions v2 events from Zitadel that keep the cached profiles current',
  },
  { name: 'health', description: 'Liveness, readiness and Prometheus metrics for operators' },
];

/**
 * Upper bounds of the strings this API reads and writes, by property name. Writes are validated to these
 * limits (the DTOs' class-validator decorators, which the swagger plugin already copies); values that come
 * from Zitadel or the server itself stay within them.
 */
const STRING_LIMITS: Record<string, number> = {
  actor_zitadel_id: 64,
  zitadel_id: 64,
  username: 64,
  display_name: 200,
  email: 254,
  pending_email: 254,
  content_type: 100,
  sha256: 64,
  // The BASIC variables: the display name (or username) and the email under their contract names.
  user_name: 200,
  user_email: 254,
  reason: 500,
  suspension_reason: 500,
  language: 35,
  timezone: 64,
  default_bot: 64,
  bot_id: 64,
  device: 200,
  ip: 45,
  request_id: 128,
  session_token: 4096,
  avatar_url: 2048,
  redirect_url: 4096,
  end_session_url: 4096,
  next_cursor: 1024,
  field: 200,
  message: 2000,
  detail: 2000,
  title: 100,
  type: 200,
  // The request path; longer ones are left out of the problem (ProblemFilter).
  instance: MAX_INSTANCE_LENGTH,
  // Parameters and headers.
  id: 36,
  session_id: 36,
  role: 64,
  'If-Match': 130,
  ETag: 130,
  'Cache-Control': 200,
  Location: 2048,
  'ZITADEL-Signature': 512,
  // Zitadel's event payload.
  aggregateID: 64,
  aggregateType: 64,
  event_type: 128,
  instanceID: 64,
  resourceOwner: 64,
  userID: 64,
  version: 16,
};
/** Whole bodies of a string type: an uploaded or served avatar, the metrics text. */
const MEDIA_LIMITS: Record<string, number> = {
  'image/png': AVATAR_MAX_BYTES,
  'image/jpeg': AVATAR_MAX_BYTES,
  'image/webp': AVATAR_MAX_BYTES,
  'text/plain': 16 * 1024 * 1024,
};
/** Items of string arrays: roles, field names. */
const ITEM_LIMITS: Record<string, number> = { roles: 64, updated_fields: 64 };
/** Arrays by property name: their largest possible length. */
const ARRAY_LIMITS: Record<string, number> = {
  roles: 20,
  updated_fields: 20,
  users: 100,
  events: 100,
  sessions: 1000,
  errors: 100,
};
/** Lengths implied by a string format. */
const FORMAT_LIMITS: Record<string, number> = {
  uuid: 36,
  'date-time': 35,
  email: 254,
  uri: 2048,
};

type Json = Record<string, unknown>;
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Adds the bounds the OWASP rules ask for (maxLength, maxItems, integer format and range) where missing. */
function boundSchema(schema: Json, name?: string): void {
  if (
    schema.type === 'string' &&
    schema.maxLength === undefined &&
    !schema.enum &&
    schema.const === undefined
  ) {
    const limit =
      (typeof schema.format === 'string' ? FORMAT_LIMITS[schema.format] : undefined) ??
      (name ? STRING_LIMITS[name] : undefined);
    if (limit !== undefined) schema.maxLength = limit;
  }
  if (schema.type === 'array') {
    if (schema.maxItems === undefined && name && ARRAY_LIMITS[name] !== undefined)
      schema.maxItems = ARRAY_LIMITS[name];
    if (isObject(schema.items)) {
      const items = schema.items;
      if (
        items.type === 'string' &&
        items.maxLength === undefined &&
        !items.enum &&
        name &&
        ITEM_LIMITS[name]
      )
        items.maxLength = ITEM_LIMITS[name];
      boundSchema(items);
    }
  }
  if (schema.type === 'integer') {
    schema.format ??= 'int32';
    schema.minimum ??= schema.format === 'int64' ? 0 : -2147483648;
    schema.maximum ??= schema.format === 'int64' ? Number.MAX_SAFE_INTEGER : 2147483647;
  }
  if (isObject(schema.properties))
    for (const [key, value] of Object.entries(schema.properties))
      if (isObject(value)) boundSchema(value, key);
  for (const key of ['allOf', 'oneOf', 'anyOf'] as const)
    if (Array.isArray(schema[key]))
      for (const part of schema[key] as unknown[]) if (isObject(part)) boundSchema(part, name);
}

const RATE_LIMIT_HEADERS = {
  RateLimit: {
    description:
      'The remaining quota of the policy that applies, e.g. `"login";r=9;t=60` (draft-ietf-httpapi-ratelimit-headers)',
    schema: { type: 'string', maxLength: 200 },
  },
  'RateLimit-Policy': {
    description: 'The policy: its name, quota and window in seconds, e.g. `"login";q=10;w=60`',
    schema: { type: 'string', maxLength: 200 },
  },
};
const RETRY_AFTER = {
  description: 'Seconds until the limit resets',
  schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 86400 },
};
const REQUEST_ID = {
  description: 'The request id, echoed when the caller sent a well-formed one',
  schema: { type: 'string', maxLength: 128 },
};

/** One example per error status, with that status's code and a typical message. */
const EXAMPLE_DETAILS: Record<number, string> = {
  400: 'Malformed request: limit must be an integer',
  401: 'Authentication required',
  403: 'You do not have permission to perform this action',
  404: 'User not found',
  409: 'A user with this email or username already exists',
  412: 'The user changed since you read it (If-Match)',
  413: 'Request body is too large',
  415: 'Unsupported media type',
  422: 'Invalid value for: email',
  429: 'Too many requests: at most 10 per minute; retry in 42 s',
  500: 'Internal server error',
  503: 'The identity provider is unavailable; try again shortly',
};

function problemExample(status: number, path: string): Json {
  // Under /api/users/{id} a 404 means that user does not exist; elsewhere, nothing at that path.
  const error =
    status === 404 && path.startsWith('/api/users/{id}') ? 'user_not_found' : codeForStatus(status);
  const detail =
    status === 404 && error === 'not_found' ? 'Not found' : (EXAMPLE_DETAILS[status] ?? STATUS_CODES[status]);
  return {
    type: `urn:users-api:problem:${error}`,
    title: STATUS_CODES[status],
    status,
    detail,
    instance: path.replace(/\{id\}/g, '0b7c1f9e-3f7a-4c8e-9d1a-5e2f4a6b8c0d'),
    error,
    message: detail,
    request_id: '7f0c2a4e-3a8f-4b7e-9a51-2f1f6f3a9c11',
    ...(status === 422 ? { errors: [{ field: 'email', message: 'email must be an email' }] } : {}),
  };
}

function boundContent(content: Json): void {
  for (const [type, media] of Object.entries(content)) {
    if (!isObject(media) || !isObject(media.schema)) continue;
    if (media.schema.type === 'string' && MEDIA_LIMITS[type]) media.schema.maxLength ??= MEDIA_LIMITS[type];
    boundSchema(media.schema);
  }
}

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

export function finishDocument(document: OpenAPIObject): OpenAPIObject {
  document.info.version = packageVersion();
  // package.json is private with no licence field: the code is not published under an open licence.
  document.info.license = { name: 'Proprietary' };
  // Relative: Swagger UI's "Try it out" calls the server that serves the document, wherever it runs.
  document.servers = [
    {
      url: '/',
      description: 'The server that serves this document: local, staging or production alike',
      'x-internal': false,
    } as OpenAPIObject['servers'] extends (infer S)[] | undefined ? S : never,
  ];
  document.tags = TAGS;

  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = (item as Record<string, unknown>)[method] as Json | undefined;
      if (!operation) continue;
      const rateLimited = operation[NOT_RATE_LIMITED] !== true;
      delete operation[NOT_RATE_LIMITED];
      // The limiter never refuses these.
      if (!rateLimited) delete (operation.responses as Json)['429'];
      for (const parameter of (operation.parameters as Json[] | undefined) ?? []) {
        // Examples of filters would be filled in by "Try it out" and narrow the first try to nothing.
        if (parameter.in === 'query') {
          delete parameter.example;
          if (isObject(parameter.schema)) delete parameter.schema.example;
        }
        if (isObject(parameter.schema)) boundSchema(parameter.schema, String(parameter.name));
      }
      const body = operation.requestBody as Json | undefined;
      if (isObject(body?.content)) boundContent(body.content);
      for (const [status, response] of Object.entries(operation.responses as Record<string, Json>)) {
        const code = Number(status);
        const headers: Json = { 'X-Request-Id': REQUEST_ID, ...(response.headers as Json | undefined) };
        if (rateLimited && (code < 300 || (code >= 400 && code < 500)))
          Object.assign(headers, RATE_LIMIT_HEADERS);
        if (code === 429) headers['Retry-After'] = RETRY_AFTER;
        response.headers = headers;
        const problem = isObject(response.content) ? response.content['application/problem+json'] : undefined;
        if (isObject(problem)) problem.example = problemExample(code, path);
        if (isObject(response.content)) boundContent(response.content);
        for (const [name, header] of Object.entries(headers))
          if (isObject(header) && isObject(header.schema)) boundSchema(header.schema, name);
      }
    }
  }
  for (const schema of Object.values(document.components?.schemas ?? {}))
    if (isObject(schema)) boundSchema(schema);
  return document;
}

/** info.version is package.json's: found by walking up from this file (src/ under jest, dist/src when built). */
function packageVersion(): string {
  for (let url = new URL('./package.json', import.meta.url); ;) {
    try {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'users-api' && pkg.version) return pkg.version;
    } catch {
      // not here: one level up
    }
    const parent = new URL('../package.json', new URL('.', url));
    if (parent.href === url.href) throw new Error('package.json of users-api not found');
    url = parent;
  }
}
