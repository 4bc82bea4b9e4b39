import { expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { Response } from 'light-my-request';

/**
 * Response validation against the committed openapi.json: every documented operation's responses must
 * use a documented status, and their bodies must match its schema (errors included). startTestApp runs
 * this on every response, so each end-to-end test is also a contract test.
 */
interface MediaType {
  schema?: object;
}
interface Operation {
  responses: Record<string, { content?: Record<string, MediaType> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
}

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

// OpenAPI 3.0 schemas: `nullable` is understood by ajv; `example` and friends are not, hence not strict.
const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'openapi.json', components: closed(document.components) });

/** Path templates as regular expressions, the ones with fewer parameters first (`/me` before `/{id}`). */
const templates = Object.keys(document.paths)
  .map((template) => ({
    template,
    params: (template.match(/\{/g) ?? []).length,
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
  }))
  .sort((a, b) => a.params - b.params);

const compiled = new Map<string, ValidateFunction>();

/** Rewrites local `#/components/...` references to the registered document. */
function rebase(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(rebase);
  if (schema && typeof schema === 'object') {
    return Object.fromEntries(
      Object.entries(schema).map(([key, value]) => [
        key,
        key === '$ref' && typeof value === 'string' ? `openapi.json${value}` : rebase(value),
      ]),
    );
  }
  return schema;
}

/**
 * Asserts a response conforms to the operation `method pathTemplate` (which must be documented). startTestApp
 * already checks every response; this names the operation explicitly, for tests about the contract itself.
 */
export function expectContract(method: string, pathTemplate: string, res: Response): void {
  expect({
    operation: `${method} ${pathTemplate}`,
    found: Boolean(document.paths[pathTemplate]?.[method.toLowerCase()]),
  }).toEqual({
    operation: `${method} ${pathTemplate}`,
    found: true,
  });
  const url = pathTemplate.replace(/\{[^}]+\}/g, 'x');
  const violations = contractViolations(
    {
      method,
      url,
      status: res.statusCode,
      contentType: res.headers['content-type']?.toString(),
      body: res.body,
    },
    pathTemplate,
  );
  expect(violations).toEqual([]);
}

/** Problems with one response, or [] when it conforms (or its path is not in the document). */
export function contractViolations(
  response: {
    method: string;
    url: string;
    status: number;
    contentType: string | undefined;
    body: string;
  },
  template?: string,
): string[] {
  const path = response.url.split('?')[0];
  const match = template
    ? templates.find((t) => t.template === template)
    : templates.find((t) => t.pattern.test(path));
  const operation = match && document.paths[match.template][response.method.toLowerCase()];
  if (!match || !operation) return [];
  const where = `${response.method} ${match.template} → ${response.status}`;
  const documented = operation.responses[String(response.status)];
  // 404/405 for a path the router does not have, 413/415 from the body parser: framework answers that
  // every route can give are not listed per operation; they still must be problem documents.
  if (!documented) {
    if (
      [404, 405, 413, 415].includes(response.status) &&
      response.contentType?.startsWith('application/problem+json')
    ) {
      return [];
    }
    return [`${where}: status not documented`];
  }
  if (!documented.content) return [];
  const mediaType = response.contentType?.split(';')[0].trim() ?? '';
  const media = documented.content[mediaType];
  if (!media) return [`${where}: content type ${mediaType || '(none)'} not documented`];
  if (!media.schema || !mediaType.includes('json')) return [];
  const key = `${where} ${mediaType}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(closed(rebase(media.schema)) as object);
    compiled.set(key, validate);
  }
  let body: unknown;
  try {
    body = JSON.parse(response.body);
  } catch {
    return [`${where}: body is not JSON`];
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${where}: ${e.instancePath || '(body)'} ${e.message ?? ''}`);
}
