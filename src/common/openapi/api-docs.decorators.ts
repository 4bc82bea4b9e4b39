import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtraModels, ApiOperation, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { STATUS_CODES } from 'node:http';
import { ProblemDto } from './problem.dto.js';

export const IS_PUBLIC = 'users-api:is-public';

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
 * Declares an operation: its summary, its error responses, and whether it is open to anonymous callers.
 * operationIds come from method names (see openapi.ts), so they are stable and unique.
 */
export function Endpoint(options: {
  summary: string;
  description?: string;
  public?: boolean;
  errors?: number[];
}) {
  const decorators = [
    ApiOperation({
      summary: options.summary,
      description: options.description,
      ...(options.public ? { security: [] } : {}),
    }),
    ApiProblemResponses(...(options.errors ?? []), ...(options.public ? [] : [401, 403])),
  ];
  if (options.public) decorators.push(SetMetadata(IS_PUBLIC, true));
  return applyDecorators(...decorators);
}
