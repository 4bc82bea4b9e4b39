import { expect } from '@jest/globals';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';
import type { Response } from 'light-my-request';

interface MediaType {
  schema?: unknown;
}
interface ResponseObject {
  content?: Record<string, MediaType>;
  headers?: Record<string, unknown>;
}
interface Operation {
  responses: Record<string, ResponseObject>;
}
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, unknown> };
};

/** The committed document: what clients are told (a test elsewhere keeps it equal to the live one). */
const document = JSON.parse(readFileSync(new URL('../../openapi.json', import.meta.url), 'utf8')) as Document;

/**
 * Object schemas become closed (additionalProperties: false unless they say otherwise), so a field the
 * document does not describe fails the check: the document must describe exactly what goes over the wire.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== 'object') return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, closed(v)]));
  if (copy.type === 'object' && copy.properties && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}

// ajv-formats is CommonJS with a default export; under jest's ESM interop it may arrive wrapped.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ??
  addFormatsModule) as unknown as (ajv: Ajv) => Ajv;
// OpenAPI 3.0 schemas: `nullable` is understood by ajv; `example` and friends are not, hence not strict.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ components: { schemas: closed(document.components.schemas) } }, 'openapi');

const validators = new Map<string, ValidateFunction>();

/**
 * Asserts a response is one the document describes for that operation: its status is listed, its content
 * type is among the status's media types, and a JSON body validates against the schema.
 */
export function expectContract(method: string, pathTemplate: string, res: Response): void {
  const operation = document.paths[pathTemplate]?.[method.toLowerCase()];
  expect({ operation: `${method} ${pathTemplate}`, found: Boolean(operation) }).toEqual({
    operation: `${method} ${pathTemplate}`,
    found: true,
  });
  const response = operation.responses[String(res.statusCode)];
  expect({ status: res.statusCode, documented: Boolean(response) }).toEqual({
    status: res.statusCode,
    documented: true,
  });
  if (!response.content) {
    expect(res.rawPayload.length).toBe(0);
    return;
  }
  const contentType = String(res.headers['content-type'] ?? '')
    .split(';')[0]
    .trim();
  expect(Object.keys(response.content)).toContain(contentType);
  if (!/json$/.test(contentType)) return;
  const key = `${method} ${pathTemplate} ${res.statusCode} ${contentType}`;
  let validate = validators.get(key);
  if (!validate) {
    const schema = JSON.parse(
      JSON.stringify(response.content[contentType].schema).replaceAll(
        '"#/components/',
        '"openapi#/components/',
      ),
    ) as object;
    validate = ajv.compile(closed(schema) as object);
    validators.set(key, validate);
  }
  const body: unknown = res.json();
  const valid = validate(body);
  expect({ body, errors: valid ? null : validate.errors }).toEqual({ body, errors: null });
}
