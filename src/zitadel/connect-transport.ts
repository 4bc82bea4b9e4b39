import {
  Code,
  ConnectError,
  createContextKey,
  createContextValues,
  type Interceptor,
  type Transport,
} from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-node';
import { ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { ApiError } from '../common/errors/api-error.js';
import { type Resilience, TransientFailure } from './resilience.js';
import type { ServiceAccountToken } from './service-account-token.js';
import { ZitadelError } from './zitadel.errors.js';
import type { ZitadelErrorKind } from './zitadel.types.js';

/**
 * The Connect transport to Zitadel's API, and what this service adds around each call, as interceptors:
 * the service account's bearer token (renewed once after Zitadel rejects it), then the resilience policies
 * (per-attempt timeout, retries of idempotent calls, circuit breaker). Connect's JSON over HTTP/1.1 is one
 * of the protocols Zitadel serves on its API port (`POST /<package>.<Service>/<Method>`); unlike gRPC it
 * passes through every HTTP proxy.
 */

const CONFLICT_MESSAGE = 'A user with this email or username already exists';

/** Whether repeating the call is harmless, so transient failures may be retried; per call, default false. */
const IDEMPOTENT = createContextKey(false, { description: 'zitadel call is idempotent' });

/** Call options marking a call as safe to repeat. */
export function idempotent(): { contextValues: ReturnType<typeof createContextValues> } {
  return { contextValues: createContextValues().set(IDEMPOTENT, true) };
}

/** Codes that say "no usable answer": worth another attempt, and counted by the circuit breaker. */
const TRANSIENT_CODES = new Set<Code>([
  Code.Unavailable,
  Code.DeadlineExceeded,
  Code.ResourceExhausted,
  Code.Internal,
  Code.Unknown,
  Code.Aborted,
  Code.Canceled,
]);

const KIND: Partial<Record<Code, ZitadelErrorKind>> = {
  [Code.InvalidArgument]: 'invalid_argument',
  [Code.NotFound]: 'not_found',
  [Code.PermissionDenied]: 'permission_denied',
  [Code.FailedPrecondition]: 'failed_precondition',
  [Code.Unauthenticated]: 'unauthenticated',
};

export function zitadelTransport(options: {
  baseUrl: string;
  token: ServiceAccountToken;
  resilience: Resilience;
  logger?: { warn(msg: string): void };
}): Transport {
  const { token, resilience, logger } = options;

  const bearer: Interceptor = (next) => async (request) => {
    for (let renewed = false; ; renewed = true) {
      const current = await token.get();
      request.header.set('authorization', `Bearer ${current}`);
      try {
        return await next(request);
      } catch (error) {
        // Zitadel rejected our token before acting, so even a non-idempotent call may repeat.
        if (renewed || !token.refreshable || ConnectError.from(error).code !== Code.Unauthenticated)
          throw error;
        logger?.warn(`Zitadel rejected the service-account token for ${request.method.name}; renewing it`);
        token.invalidate(current);
      }
    }
  };

  const resilient: Interceptor = (next) => (request) =>
    resilience.run(
      `${request.service.typeName}/${request.method.name}`,
      request.contextValues.get(IDEMPOTENT),
      async (signal) => {
        try {
          return await next({ ...request, signal: AbortSignal.any([request.signal, signal]) });
        } catch (error) {
          const connectError = ConnectError.from(error);
          if (TRANSIENT_CODES.has(connectError.code)) {
            throw new TransientFailure(`${Code[connectError.code]}: ${connectError.rawMessage}`);
          }
          throw error;
        }
      },
    );

  return createConnectTransport({
    baseUrl: options.baseUrl,
    httpVersion: '1.1',
    useBinaryFormat: false,
    interceptors: [bearer, resilient],
  });
}

/**
 * Zitadel's answer as what callers branch on: AlreadyExists is a 409 ApiError, an outage the 503 ApiError
 * the resilience policies raised, everything else a ZitadelError with its kind and Zitadel's error id
 * (`COMMAND-3M0fs`), from the `zitadel.v1.ErrorDetail` Zitadel attaches, else from the message's tail.
 * Zitadel's text stays in ZitadelError (server logs); ApiErrors carry only this service's text.
 */
export function fromConnectError(error: unknown): unknown {
  if (!(error instanceof ConnectError)) return error;
  if (error.cause instanceof ApiError) return error.cause;
  if (error.code === Code.AlreadyExists) return ApiError.conflict(CONFLICT_MESSAGE);
  const detail = error.findDetails(ErrorDetailSchema)[0];
  const errorId = detail?.id || /\(([A-Z]+-[A-Za-z0-9]+)\)\s*$/.exec(error.rawMessage)?.[1];
  return new ZitadelError(
    KIND[error.code] ?? 'unknown',
    errorId,
    `Zitadel answered ${Code[error.code]}: ${error.rawMessage}`,
  );
}

/** Wraps a Connect client so that each call's failure arrives as fromConnectError describes. */
export function withZitadelErrors<T extends object>(client: T): T {
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) =>
        (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).catch((error: unknown) => {
          throw fromConnectError(error);
        });
    },
  });
}
