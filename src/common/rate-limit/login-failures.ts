import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectThrottlerStorage, normalizeIp, type ThrottlerStorage } from '@nestjs/throttler';
import type { AppConfig, RateLimitSetting } from '../../config/app-config.js';
import { ApiError } from '../errors/api-error.js';
import { FailoverThrottlerStorage } from './failover-throttler.storage.js';

const THROTTLER_NAME = 'login-failures';

/**
 * Failed logins counted per account and client IP (`RATE_LIMIT_LOGIN_FAILURES`, default 5 per 15 minutes),
 * in the rate limits' own storage (Redis when configured, so every instance sees the same count).
 *
 * The per-IP login limit alone lets one client spend an account's whole lockout budget (ten wrong passwords
 * lock a user in dev-idp, or in Zitadel with a lockout policy), locking the user out and ending all their
 * sessions. Here one client gets fewer failures per account than the lockout needs, and is then refused
 * before Zitadel sees another password; the real user, from another address, is not affected. Only failures
 * count, so a user who logs in often from one address is never refused.
 */
@Injectable()
export class LoginFailureThrottle {
  private readonly setting: RateLimitSetting;
  private readonly accountEmails: RateLimitSetting;

  constructor(
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    config: ConfigService<AppConfig, true>,
  ) {
    this.setting = config.get('rateLimits', { infer: true }).loginFailures;
    this.accountEmails = config.get('rateLimits', { infer: true }).accountEmails;
  }

  /** Throws 429 `rate_limited` (with `retryAfter` seconds) while this account and IP are over the limit. */
  async assertAllowed(loginName: string, ip: string | null): Promise<void> {
    if (!(this.storage instanceof FailoverThrottlerStorage)) return;
    const seconds = await this.storage.blockedFor(this.key(loginName, ip), THROTTLER_NAME);
    if (seconds > 0) throw new LoginThrottledError(seconds);
  }

  /** Counts one failed login; the failure that reaches the limit starts the block. */
  async recordFailure(loginName: string, ip: string | null): Promise<void> {
    const windowMs = this.setting.windowSeconds * 1000;
    // Blocked once `limit` failures are in: the storage blocks when the count exceeds its limit.
    await this.storage.increment(
      this.key(loginName, ip),
      windowMs,
      this.setting.limit - 1,
      windowMs,
      THROTTLER_NAME,
    );
  }

  /** Whether the user's email code has met EMAIL_CODE_MAX_ATTEMPTS wrong guesses within its lifetime. */
  async emailCodeDead(userId: string): Promise<boolean> {
    if (!(this.storage instanceof FailoverThrottlerStorage)) return false;
    return (await this.storage.blockedFor(hashedKey(EMAIL_CODE_THROTTLER, userId), EMAIL_CODE_THROTTLER)) > 0;
  }

  /** Counts one wrong email code for the user (any user id, known or not: the answers must not differ). */
  async recordEmailCodeFailure(userId: string): Promise<void> {
    await this.storage.increment(
      hashedKey(EMAIL_CODE_THROTTLER, userId),
      EMAIL_CODE_LIFETIME_MS,
      EMAIL_CODE_MAX_ATTEMPTS - 1,
      EMAIL_CODE_LIFETIME_MS,
      EMAIL_CODE_THROTTLER,
    );
  }

  /** A new email code starts a fresh attempt count. */
  async clearEmailCodeFailures(userId: string): Promise<void> {
    if (!(this.storage instanceof FailoverThrottlerStorage)) return;
    await this.storage.reset(hashedKey(EMAIL_CODE_THROTTLER, userId), EMAIL_CODE_THROTTLER);
  }

  /** Whether the user's password-reset code has met PASSWORD_CODE_MAX_ATTEMPTS wrong guesses. */
  async passwordCodeDead(userId: string): Promise<boolean> {
    if (!(this.storage instanceof FailoverThrottlerStorage)) return false;
    return (
      (await this.storage.blockedFor(hashedKey(PASSWORD_CODE_THROTTLER, userId), PASSWORD_CODE_THROTTLER)) > 0
    );
  }

  /** Counts one wrong password-reset code for the account (known or not: the answers must not differ). */
  async recordPasswordCodeFailure(account: string): Promise<void> {
    await this.storage.increment(
      hashedKey(PASSWORD_CODE_THROTTLER, account),
      EMAIL_CODE_LIFETIME_MS,
      PASSWORD_CODE_MAX_ATTEMPTS - 1,
      EMAIL_CODE_LIFETIME_MS,
      PASSWORD_CODE_THROTTLER,
    );
  }

  /** A new reset code starts a fresh attempt count (Zitadel's new code replaces the old one). */
  async clearPasswordCodeFailures(account: string): Promise<void> {
    if (!(this.storage instanceof FailoverThrottlerStorage)) return;
    await this.storage.reset(hashedKey(PASSWORD_CODE_THROTTLER, account), PASSWORD_CODE_THROTTLER);
  }

  /**
   * Takes one of the account's mailed codes (`RATE_LIMIT_ACCOUNT_EMAILS`); false once they are used up for
   * the window, when nothing may be mailed (the caller still answers as if it had).
   */
  async takeAccountEmail(userId: string): Promise<boolean> {
    const windowMs = this.accountEmails.windowSeconds * 1000;
    const record = await this.storage.increment(
      hashedKey(ACCOUNT_EMAIL_THROTTLER, userId),
      windowMs,
      this.accountEmails.limit,
      windowMs,
      ACCOUNT_EMAIL_THROTTLER,
    );
    return !record.isBlocked;
  }

  private key(loginName: string, ip: string | null): string {
    const account = loginName.trim().normalize('NFKC').toLowerCase();
    return hashedKey(THROTTLER_NAME, `${account}|${ip ? normalizeIp(ip) : 'unknown'}`);
  }
}

/** Wrong codes after which an email verification code is dead (here and in dev-idp). */
export const EMAIL_CODE_MAX_ATTEMPTS = 5;
/** Zitadel's email codes live an hour by default; a dead code stays dead that long. */
const EMAIL_CODE_LIFETIME_MS = 3_600_000;
const EMAIL_CODE_THROTTLER = 'email-code-failures';
/** Wrong codes after which a password-reset code is dead here (and in dev-idp). */
export const PASSWORD_CODE_MAX_ATTEMPTS = 5;
const PASSWORD_CODE_THROTTLER = 'password-code-failures';
const ACCOUNT_EMAIL_THROTTLER = 'account-emails';

/** Hashed like every rate-limit key: Redis never holds login names, user ids or addresses in clear. */
function hashedKey(scope: string, subject: string): string {
  return `rl:${createHash('sha256').update(`${scope}|${subject}`).digest('base64url')}`;
}

/** The 429 of a throttled account; the controller adds `Retry-After`. */
export class LoginThrottledError extends ApiError {
  constructor(readonly retryAfterSeconds: number) {
    super(
      'rate_limited',
      `Too many failed logins for this account from this address; retry in ${retryAfterSeconds} s`,
    );
  }
}
