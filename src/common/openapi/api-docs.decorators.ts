import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtraModels, ApiOperation, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';
import { ACCESS_METADATA, describeAccess, type Access } from '../access.js';
import { ProblemDto } from './problem.dto.js';

/** Error statuses every operation can answer with, whatever it does. */
const ALWAYS = [400, 429, 500, 503];

/** Documents the problem-document responses an operation may send, always with the shared schema. */
export function ApiProblemResponses(...statuses: number[]): MethodDecorator & ClassDecorator {
  const all = [...new Set([...statuses, ...ALWAYS])].sort((a, b) => a - b);
  return applyDecorators(
    ApiExtraModels(ProblemDto),
    ...all.map((status) =>
      ApiResponse({
        status,
        description: STATUS_CODES[status],
        content: { 'application/problem+json': { schema: { $ref: getSchemaPath(ProblemDto) } } },
      }),
    ),
  );
}

/**
 * Declares an operation in one place: who may call it (enforced by the global guard), its summary, and
 * its error responses (401/403 added for protected routes). operationIds are the method names.
 */
export function Endpoint(options: {
  summary: string;
  description?: string;
  access: Access;
  errors?: number[];
}) {
  const isPublic = options.access === 'public';
  const description = [options.description, describeAccess(options.access)].filter(Boolean).join('\n\n');
  return applyDecorators(
    SetMetadata(ACCESS_METADATA, options.access),
    ApiOperation({ summary: options.summary, description, ...(isPublic ? { security: [] } : {}) }),
    ApiProblemResponses(...(options.errors ?? []), ...(isPublic ? [] : [401, 403])),
  );
}
