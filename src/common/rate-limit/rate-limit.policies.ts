import { createHash } from 'node:crypto';
import { applyDecorators, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { ApiExtension } from '@nestjs/swagger';
import { NOT_RATE_LIMITED } from '../openapi/finish-document.js';
import { Reflector } from '@nestjs/core';
import { normalizeIp, type ThrottlerOptions } from '@nestjs/throttler';
import type { AuthenticatedRequest } from '../../auth/principal.js';
import type { AppConfig, RateLimitSetting } from '../../config/app-config.js';

/**
 * The contract's rate limits ("Rate Limits" table of the seed), each a named throttler of
 * @nestjs/throttler. A route opts into one with its decorator below; every other route gets `default`.
 * Exactly one policy applies to a route, so its RateLimit headers describe one quota.
 *
 * | policy        | decorator                | counted per                 | env                      |
 * | ------------- | ------------------------ | --------------------------- | ------------------------ |
 * | `login`       | `@LoginRateLimit()`      | client IP                   | `RATE_LIMIT_LOGIN`       |
 * | `register`    | `@RegisterRateLimit()`   | client IP                   | `RATE_LIMIT_REGISTER`    |
 * | `account-recovery` | `@AccountRecoveryRateLimit()` | client IP     | `RATE_LIMIT_ACCOUNT_RECOVERY` |
 * | `user-list`   | `@UserListRateLimit()`   | user                        | `RATE_LIMIT_USER_LIST`   |
 * | `user-update` | `@UserUpdateRateLimit()` | user                        | `RATE_LIMIT_USER_UPDATE` |
 * | `default`     | (none)                   | user, or IP when anonymous  | `RATE_LIMIT_DEFAULT`     |
 */
export const RATE_LIMIT_POLICIES = [
  'login',
  'register',
  'account-recovery',
  'user-list',
  'user-update',
  'default',
] as const;
export type RateLimitPolicy = (typeof RATE_LIMIT_POLICIES)[number];

export const RATE_LIMIT_POLICY_METADATA = 'users-api:rate-limit-policy';

/** `POST /api/users/login`: 10/minute per client IP. Wrong passwords count: that is the point. */
export const LoginRateLimit = () => SetMetadata(RATE_LIMIT_POLICY_METADATA, 'login');
/** `POST /api/users/register`: 5/hour per client IP. */
export const RegisterRateLimit = () => SetMetadata(RATE_LIMIT_POLICY_METADATA, 'register');
/**
 * Password reset (request and confirm) and resending a verification code: 10 per 15 minutes per client IP,
 * one budget for all three (anonymous routes that mail codes or guess them).
 */
export const AccountRecoveryRateLimit = () => SetMetadata(RATE_LIMIT_POLICY_METADATA, 'account-recovery');
/** `GET /api/users`: 60/minute per user. Put it on the list handler (it needs an authenticated route). */
export const UserListRateLimit = () => SetMetadata(RATE_LIMIT_POLICY_METADATA, 'user-list');
/**
 * `PUT /api/users/:id` and `PUT /api/users/:id/settings`: 30/minute per user, one budget shared by
 * both routes (a named policy counts per caller across all its routes; `default` counts per route).
 */
export const UserUpdateRateLimit = () => SetMetadata(RATE_LIMIT_POLICY_METADATA, 'user-update');
/** Not limited at all: probes and scrapers (health, metrics) must never be refused. */
export const SkipRateLimit = () =>
  applyDecorators(SetMetadata(RATE_LIMIT_POLICY_METADATA, 'none'), ApiExtension(NOT_RATE_LIMITED, true));

const reflector = new Reflector();

export function policyOf(context: ExecutionContext): RateLimitPolicy | 'none' {
  return (
    reflector.getAllAndOverride<RateLimitPolicy | 'none' | undefined>(RATE_LIMIT_POLICY_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]) ?? 'default'
  );
}

/** IPv6 clients are counted per /64, as one host usually has the whole prefix. */
const byIp = (request: Record<string, unknown>) => `ip:${normalizeIp(String(request.ip))}`;

/** The access guard runs first, so `user` is set on every authenticated route. */
const byUser = (request: Record<string, unknown>) => {
  const principal = (request as unknown as AuthenticatedRequest).user;
  if (!principal) return byIp(request);
  return principal.userId ? `user:${principal.userId}` : `zitadel:${principal.zitadelId}`;
};

const TRACKERS: Record<RateLimitPolicy, (request: Record<string, unknown>) => string> = {
  login: byIp,
  register: byIp,
  'account-recovery': byIp,
  'user-list': byUser,
  'user-update': byUser,
  default: byUser,
};

const SETTING: Record<RateLimitPolicy, keyof AppConfig['rateLimits']> = {
  login: 'login',
  register: 'register',
  'account-recovery': 'accountRecovery',
  'user-list': 'userList',
  'user-update': 'userUpdate',
  default: 'default',
};

export function buildThrottlers(limits: AppConfig['rateLimits']): ThrottlerOptions[] {
  return RATE_LIMIT_POLICIES.map((name) => {
    const setting: RateLimitSetting = limits[SETTING[name]];
    return {
      name,
      limit: setting.limit,
      ttl: setting.windowSeconds * 1000,
      getTracker: TRACKERS[name],
      skipIf: (context: ExecutionContext) => policyOf(context) !== name,
      // Hashed, so Redis never holds client addresses or user ids in clear.
      generateKey: (context: ExecutionContext, tracker: string) => {
        const scope = name === 'default' ? `${context.getClass().name}.${context.getHandler().name}` : name;
        return createHash('sha256').update(`${scope}|${tracker}`).digest('base64url');
      },
    };
  });
}
