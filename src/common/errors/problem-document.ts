import { STATUS_CODES } from 'node:http';
import type { ErrorCode } from './error-code.js';
import type { FieldError } from './api-error.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

/**
 * An RFC 9457 problem document. `type`, `title`, `status`, `detail` and `instance` are the RFC's members;
 * `error`, `message` and `request_id` are the contract's fields, carried as extension members.
 */
export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  error: ErrorCode;
  message: string;
  request_id: string;
  errors?: FieldError[];
}

export function problemTypeUri(code: ErrorCode): string {
  return `urn:users-api:problem:${code}`;
}

export function buildProblem(args: {
  code: ErrorCode;
  status: number;
  message: string;
  requestId: string;
  instance?: string;
  fieldErrors?: FieldError[];
}): ProblemDocument {
  const problem: ProblemDocument = {
    type: problemTypeUri(args.code),
    title: STATUS_CODES[args.status] ?? 'Error',
    status: args.status,
    detail: args.message,
    error: args.code,
    message: args.message,
    request_id: args.requestId,
  };
  if (args.instance) problem.instance = args.instance;
  if (args.fieldErrors?.length) problem.errors = args.fieldErrors;
  return problem;
}
