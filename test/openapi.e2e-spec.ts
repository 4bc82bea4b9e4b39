import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import type { OpenAPIObject } from '@nestjs/swagger';
import { buildOpenApiDocument } from '../src/common/openapi/build-openapi-document.js';
import { serializeOpenApi } from '../src/common/openapi/openapi.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

interface OperationObject {
  operationId?: string;
  summary?: string;
  security?: unknown[];
  responses: Record<string, unknown>;
}

function operations(document: OpenAPIObject): Array<{ id: string; operation: OperationObject }> {
  const paths = document.paths as Record<string, Partial<Record<(typeof METHODS)[number], OperationObject>>>;
  return Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((m) => item[m]).map((m) => ({ id: `${m.toUpperCase()} ${path}`, operation: item[m]! })),
  );
}

describe('OpenAPI document', () => {
  let document: OpenAPIObject;
  beforeAll(async () => {
    document = await buildOpenApiDocument();
  });

  it('matches the committed openapi.json (run `npm run openapi` after changing the API)', async () => {
    const committed = await readFile(new URL('../openapi.json', import.meta.url), 'utf8');
    expect(serializeOpenApi(document)).toBe(committed);
  });

  it('gives every operation a unique operationId, a summary, a security requirement and problem responses', () => {
    const ids = new Set<string>();
    for (const { id, operation } of operations(document)) {
      expect({ id, operationId: operation.operationId }).toEqual({ id, operationId: expect.any(String) });
      expect(ids.has(operation.operationId!)).toBe(false);
      ids.add(operation.operationId!);
      expect({ id, summary: operation.summary }).toEqual({ id, summary: expect.any(String) });
      // Either its own requirement ([] = public) or the document's global bearer requirement applies.
      expect({ id, security: operation.security ?? document.security }).toEqual({
        id,
        security: expect.any(Array),
      });
      const errorStatuses = Object.keys(operation.responses).filter((s) => Number(s) >= 400);
      expect({ id, errorStatuses }).toEqual({ id, errorStatuses: expect.arrayContaining(['400', '500']) });
      for (const status of errorStatuses) {
        const response = operation.responses[status] as {
          content?: Record<string, { schema?: { $ref?: string } }>;
        };
        expect({ id, status, ref: response.content?.['application/problem+json']?.schema?.$ref }).toEqual({
          id,
          status,
          ref: '#/components/schemas/ProblemDto',
        });
      }
    }
    expect(ids.size).toBeGreaterThan(0);
  });

  it('has the typed client of client/ generated from the committed document (run `npm run openapi`)', async () => {
    const { default: openapiTS, astToString } = await import('openapi-typescript');
    const committed = await readFile(new URL('../client/schema.d.ts', import.meta.url), 'utf8');
    const generated = astToString(
      await openapiTS(new URL('../openapi.json', import.meta.url), {
        alphabetize: true,
        defaultNonNullable: false,
      }),
    );
    // The CLI puts a "generated, do not edit" banner above what the API returns.
    expect(committed.slice(committed.indexOf('export '))).toBe(generated.slice(generated.indexOf('export ')));
  });

  it('declares the bearer scheme', () => {
    expect(document.components?.securitySchemes?.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  describe('served by the application', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp();
    });
    afterAll(() => t.close());

    it('serves the same document at /docs-json and Swagger UI at /docs', async () => {
      const json = await t.http({ method: 'GET', url: '/docs-json' });
      expect(json.statusCode).toBe(200);
      expect(serializeOpenApi(json.json())).toBe(serializeOpenApi(document));
      const ui = await t.http({ method: 'GET', url: '/docs' });
      expect(ui.statusCode).toBe(200);
      expect(ui.body).toContain('swagger-ui');
    });
  });
});
