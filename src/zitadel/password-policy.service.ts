import { Injectable } from '@nestjs/common';
import { ApiError } from '../common/errors/api-error.js';
import { loadOnce } from './load-once.js';
import { ZitadelClient } from './zitadel.client.js';
import type { PasswordComplexitySettings } from './zitadel.types.js';

/** Zitadel's policy changes rarely; reading it once a minute keeps it off every password request. */
const POLICY_CACHE_MS = 60_000;

/** Zitadel's error ids for a password its complexity policy refuses (PasswordComplexityPolicy.Check). */
export const PASSWORD_POLICY_ERROR_IDS: ReadonlySet<string> = new Set([
  'COMMA-HuJf6',
  'COMMA-co3Xw',
  'COMMA-VoaRj',
  'COMMA-ZBv4H',
  'COMMA-ZDLwA',
]);

/** Each rule of the policy that the password breaks, in Zitadel's words and order. */
export function brokenRules(password: string, policy: PasswordComplexitySettings): string[] {
  const broken: string[] = [];
  // Zitadel counts bytes (Go's len), so a password it accepts is never refused here, nor the reverse.
  if (Buffer.byteLength(password, 'utf8') < policy.minLength)
    broken.push(`must be at least ${policy.minLength} characters long`);
  if (policy.requiresLowercase && !/\p{Ll}/u.test(password)) broken.push('must contain a lower-case letter');
  if (policy.requiresUppercase && !/\p{Lu}/u.test(password)) broken.push('must contain an upper-case letter');
  if (policy.requiresNumber && !/[0-9]/.test(password)) broken.push('must contain a digit');
  if (policy.requiresSymbol && !/[^\p{L}\p{N}]/u.test(password)) broken.push('must contain a symbol');
  return broken;
}

/**
 * Zitadel's password complexity policy (settings v2 GetPasswordComplexitySettings), applied before a new
 * password is sent to Zitadel: a weak one gets a 422 naming each broken rule (in one error on the field,
 * as every other validation answers), and Zitadel is not called.
 */
@Injectable()
export class PasswordPolicyService {
  /** Zitadel's policy, read at most once a minute; a failed read is not remembered: the next request asks again. */
  readonly policy = loadOnce(() => this.zitadel.getPasswordComplexitySettings(), POLICY_CACHE_MS);

  constructor(private readonly zitadel: ZitadelClient) {}

  /** 422 with one error on `field` naming every broken rule (`password must …; must …`). */
  async assertAcceptable(field: string, password: string): Promise<void> {
    const broken = brokenRules(password, await this.policy());
    if (broken.length) {
      throw ApiError.validation([{ field, message: `${field} ${broken.join('; ')}` }]);
    }
  }
}
