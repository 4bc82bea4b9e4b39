import { Injectable, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerOptions,
  type ThrottlerRequest,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyReply } from 'fastify';
import { Counter } from 'prom-client';
import { MetricsService } from '../../metrics/metrics.service.js';
import { ApiError } from '../errors/api-error.js';
import { policyOf } from './rate-limit.policies.js';

/**
 * @nestjs/throttler's guard (named throttlers, trackers, storage) with this API's responses: the IETF
 * `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers) instead of the
 * library's `X-RateLimit-*`, and over the limit a `rate_limited` problem document with `Retry-After`.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  /** `rate_limit_refusals_total{policy}`: which limits callers hit. */
  private readonly refusals: Counter<'policy'>;

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    metrics: MetricsService,
  ) {
    super(options, storage, reflector);
    this.refusals = new Counter({
      name: 'rate_limit_refusals_total',
      help: 'Requests refused with 429 by the rate limiter, by policy',
      labelNames: ['policy'] as const,
      registers: [metrics.registry],
    });
  }

  /** The one policy of each route (see rate-limit.policies.ts), resolved on its first request. */
  private readonly policies = new WeakMap<object, Map<object, ThrottlerOptions | null>>();

  /**
   * The library's canActivate asks the reflector six times for each of the five named throttlers on every
   * request (skip, limit, ttl, block duration, tracker, key generator) to find the one that applies. A
   * route's policy is fixed at start-up, so it is looked up once per route and kept; the library's
   * per-route overrides (@Throttle, @SkipThrottle) are not used here (SkipRateLimit and the policy
   * decorators are).
   */
  override async canActivate(context: ExecutionContext): Promise<boolean> {
    const throttler = this.policyFor(context);
    if (!throttler) return true;
    const ttl = throttler.ttl as number;
    return this.handleRequest({
      context,
      limit: throttler.limit as number,
      ttl,
      throttler,
      blockDuration: (throttler.blockDuration as number | undefined) ?? ttl,
      getTracker: throttler.getTracker!,
      generateKey: throttler.generateKey!,
    });
  }

  private policyFor(context: ExecutionContext): ThrottlerOptions | null {
    const classRef = context.getClass();
    const handler = context.getHandler();
    let byHandler = this.policies.get(classRef);
    if (!byHandler) this.policies.set(classRef, (byHandler = new Map<object, ThrottlerOptions | null>()));
    let throttler = byHandler.get(handler);
    if (throttler === undefined) {
      const policy = policyOf(context);
      throttler = policy === 'none' ? null : (this.throttlers.find((t) => t.name === policy) ?? null);
      byHandler.set(handler, throttler);
    }
    return throttler;
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    const { context, limit, ttl, throttler, blockDuration, getTracker, generateKey } = request;
    const name = throttler.name ?? 'default';
    const { req, res } = this.getRequestResponse(context);
    const tracker = await getTracker(req, context);
    // In Redis under REDIS_KEY_PREFIX (the client adds it): users-api:{rl:<hash>:login}:hits
    const key = `rl:${generateKey(context, tracker, name)}`;
    const record = await this.storageService.increment(key, ttl, limit, blockDuration, name);

    const reply = res as FastifyReply;
    const windowSeconds = Math.ceil(ttl / 1000);
    const resetSeconds = Math.max(0, record.isBlocked ? record.timeToBlockExpire : record.timeToExpire);
    appendHeader(reply, 'RateLimit-Policy', `"${name}";q=${limit};w=${windowSeconds}`);
    appendHeader(
      reply,
      'RateLimit',
      `"${name}";r=${Math.max(0, limit - record.totalHits)};t=${resetSeconds}`,
    );
    if (record.isBlocked) {
      this.refusals.inc({ policy: name });
      const retryAfter = Math.max(1, record.timeToBlockExpire);
      void reply.header('Retry-After', String(retryAfter));
      throw new ApiError(
        'rate_limited',
        `Too many requests: at most ${limit} per ${describeWindow(windowSeconds)}; retry in ${retryAfter} s`,
      );
    }
    return true;
  }
}

/** Both fields are lists: should two policies ever apply to one route, each adds its member. */
function appendHeader(reply: FastifyReply, name: string, member: string): void {
  const existing = reply.getHeader(name);
  void reply.header(name, existing ? `${String(existing)}, ${member}` : member);
}

function describeWindow(seconds: number): string {
  if (seconds % 3600 === 0) return seconds === 3600 ? 'hour' : `${seconds / 3600} hours`;
  if (seconds % 60 === 0) return seconds === 60 ? 'minute' : `${seconds / 60} minutes`;
  return seconds === 1 ? 'second' : `${seconds} seconds`;
}
