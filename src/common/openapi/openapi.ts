import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';

export const BEARER_SCHEME = 'bearer';

/** Builds the OpenAPI document from the running application's controllers and DTOs. */
export function createOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('users-api')
    .setDescription(
      'User management for the chat-bot platform: profiles cached from Zitadel, settings, sessions and admin ' +
        'operations. Every error is an RFC 9457 problem document (application/problem+json) whose `error` ' +
        'member carries the contract code; every response carries X-Request-Id.\n\n' +
        'Ids of users and sessions are UUIDs (`0b7c1f9e-3f7a-4c8e-9d1a-5e2f4a6b8c0d`; the contract’s ' +
        '`user-123` is only an example). Timestamps are ISO 8601 in UTC with milliseconds ' +
        '(`2026-11-25T14:48:07.505Z`). `roles` always come back sorted alphabetically.',
    )
    .setVersion('1.0.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' }, BEARER_SCHEME)
    .addSecurityRequirements(BEARER_SCHEME)
    .build();
  return describeConventions(
    SwaggerModule.createDocument(app, config, {
      operationIdFactory: (_controllerKey, methodKey) => methodKey,
    }),
  );
}

const UUID_DESCRIPTION = 'A UUID';
const TIMESTAMP_DESCRIPTION = 'ISO 8601 in UTC, with milliseconds (2026-11-25T14:48:07.505Z)';
const ROLES_DESCRIPTION = 'Sorted alphabetically';

interface SchemaLike {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, SchemaLike>;
}

/**
 * The conventions every route follows, written into the document once rather than on each DTO: path
 * ids (`:id`, `:session_id`) are UUIDs, timestamps carry milliseconds, roles come back sorted. A field
 * that has its own description keeps it.
 */
function describeConventions(document: OpenAPIObject): OpenAPIObject {
  for (const operations of Object.values(document.paths)) {
    for (const operation of Object.values(operations as Record<string, { parameters?: unknown[] }>)) {
      for (const parameter of (operation?.parameters ?? []) as Array<{
        in?: string;
        name?: string;
        description?: string;
        schema?: SchemaLike;
      }>) {
        if (parameter.in !== 'path' || !/^(id|.+_id)$/.test(parameter.name ?? '')) continue;
        parameter.schema = { ...parameter.schema, type: 'string', format: 'uuid' };
        parameter.description ??= UUID_DESCRIPTION;
      }
    }
  }
  // What clients send is described by its own DTO; the conventions are about what this service answers.
  const requestSchemas = new Set(
    [
      ...JSON.stringify(document.paths).matchAll(
        /"requestBody":\{[^]*?"\$ref":"#\/components\/schemas\/(\w+)"/g,
      ),
    ].map((match) => match[1]),
  );
  for (const [schemaName, schema] of Object.entries(document.components?.schemas ?? {}) as Array<
    [string, SchemaLike]
  >) {
    if (requestSchemas.has(schemaName)) continue;
    for (const [name, property] of Object.entries(schema.properties ?? {})) {
      if (property.format === 'uuid') property.description ??= UUID_DESCRIPTION;
      if (property.format === 'date-time') {
        property.description = property.description
          ? `${property.description}. ${TIMESTAMP_DESCRIPTION}`
          : TIMESTAMP_DESCRIPTION;
      }
      if (name === 'roles' && property.type === 'array') {
        property.description = property.description
          ? `${property.description}. ${ROLES_DESCRIPTION}`
          : ROLES_DESCRIPTION;
      }
    }
  }
  return document;
}

/** Key-sorted copy, so the committed openapi.json changes only when the contract does. */
export function sortKeysDeep<T>(value: T): T {
  if (Array.isArray(value)) return value.map(sortKeysDeep) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeysDeep((value as Record<string, unknown>)[key])]),
    ) as T;
  }
  return value;
}

export function serializeOpenApi(document: OpenAPIObject): string {
  return `${JSON.stringify(sortKeysDeep(document), null, 2)}\n`;
}
