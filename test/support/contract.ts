import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

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

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema({ $id: 'openapi.json', components: document.components });

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

/** Problems with one response, or [] when it conforms (or its path is not in the document). */
export function contractViolations(response: {
  method: string;
  url: string;
  status: number;
  contentType: string | undefined;
  body: string;
}): string[] {
  const path = response.url.split('?')[0];
  const match = templates.find((t) => t.pattern.test(path));
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
    validate = ajv.compile(rebase(media.schema) as object);
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
