/**
 * A typed client for users-api, for the platform's other services: TypeScript types generated from the
 * committed openapi.json (openapi-typescript, `npm run openapi`) and openapi-fetch underneath, so a path,
 * a parameter or a field that the contract does not have is a compile error in the caller.
 *
 *   const api = createUsersApiClient({ baseUrl: 'http://users-api:3000', token });
 *   const { data, error } = await api.GET('/api/users/{id}', { params: { path: { id } } });
 */
import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema.js';

export type { components, paths };
export type Problem = components['schemas']['ProblemDto'];
export type UsersApiClient = Client<paths>;

export function createUsersApiClient(options: {
  baseUrl: string;
  /** A session token or a Zitadel access token, sent as `Authorization: Bearer`. */
  token?: string;
  headers?: Record<string, string>;
  /** Another fetch (tests route requests into the application in-process). */
  fetch?: typeof globalThis.fetch;
}): UsersApiClient {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    fetch: options.fetch,
    headers: {
      ...options.headers,
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
    },
  });
}

/** A problem document answer (4xx/5xx) as an exception, for callers who prefer try/catch. */
export class UsersApiError extends Error {
  override readonly name = 'UsersApiError';
  constructor(
    readonly status: number,
    /** The RFC 9457 body: `error` is the contract's code (`user_not_found`, `rate_limited`, …). */
    readonly problem: Problem,
  ) {
    super(`${status} ${problem.error}: ${problem.detail}`);
  }
}

/** The data of a successful answer, or a thrown UsersApiError carrying the problem document. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.error !== undefined || result.data === undefined)
    throw new UsersApiError(result.response.status, result.error as Problem);
  return result.data;
}
