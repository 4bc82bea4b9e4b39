import { expect } from '@jest/globals';
import type { Response } from 'light-my-request';
import type { ErrorCode } from '../../src/common/errors/error-code.js';

/** Asserts the response is the contract's error: status, code, RFC 9457 members and the request id. */
export function expectProblem(res: Response, status: number, code: ErrorCode): void {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  const body = res.json();
  expect(body).toMatchObject({
    type: `urn:users-api:problem:${code}`,
    status,
    error: code,
    request_id: res.headers['x-request-id'],
  });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(body.message).toBe(body.detail);
}
