import { randomInt, timingSafeEqual } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { Code } from '@connectrpc/connect';
import type { PasswordComplexitySettings } from '@zitadel/proto/zitadel/settings/v2/password_settings_pb.js';
import { ZitadelError, failedPrecondition, invalidArgument } from './errors.js';
import type { EventDispatcher } from './events.js';
import type { Queryable, Store, UserRow } from './store.js';

/**
 * Consecutive wrong passwords after which a user is locked. Zitadel's lockout policy is off by default;
 * this stand-in turns it on so the service's handling of locked users can be exercised.
 */
export const MAX_PASSWORD_ATTEMPTS = 10;

/** Zitadel's password complexity policy (settings v2 PasswordComplexitySettings), `minLength` as a number. */
export type PasswordComplexity = Pick<
  PasswordComplexitySettings,
  'requiresUppercase' | 'requiresLowercase' | 'requiresNumber' | 'requiresSymbol'
> & { minLength: number };

/** Zitadel's default policy: 8 characters with a lower and an upper case letter, a number and a symbol. */
export const DEFAULT_PASSWORD_COMPLEXITY: PasswordComplexity = {
  minLength: 8,
  requiresUppercase: true,
  requiresLowercase: true,
  requiresNumber: true,
  requiresSymbol: true,
};

/**
 * The password complexity policy, checked in Zitadel's order and reported with the ids of its command side
 * (PasswordComplexityPolicyWriteModel.Validate).
 */
export function checkPasswordPolicy(
  password: string,
  policy: PasswordComplexity = DEFAULT_PASSWORD_COMPLEXITY,
): void {
  // Zitadel measures bytes (Go's len), not characters.
  if (Buffer.byteLength(password, 'utf8') < policy.minLength)
    throw invalidArgument('COMMA-HuJf6', 'Password is too short');
  if (policy.requiresLowercase && !/\p{Ll}/u.test(password))
    throw invalidArgument('COMMA-co3Xw', 'Password must contain a lower case letter');
  if (policy.requiresUppercase && !/\p{Lu}/u.test(password))
    throw invalidArgument('COMMA-VoaRj', 'Password must contain an upper case letter');
  if (policy.requiresNumber && !/[0-9]/.test(password))
    throw invalidArgument('COMMA-ZBv4H', 'Password must contain a number');
  if (policy.requiresSymbol && !/[^\p{L}\p{N}]/u.test(password))
    throw invalidArgument('COMMA-ZDLwA', 'Password must contain a symbol');
}

/** argon2id with the library's defaults (19 MiB, 2 passes): the OWASP baseline. */
export function hashPassword(password: string): Promise<string> {
  return hash(password);
}

export async function passwordMatches(passwordHash: string, password: string): Promise<boolean> {
  try {
    return await verify(passwordHash, password);
  } catch {
    return false;
  }
}

/** A password that satisfies the policy: 20 characters with every class present. */
export function generatePassword(): string {
  const classes = ['abcdefghijkmnopqrstuvwxyz', 'ABCDEFGHJKLMNPQRSTUVWXYZ', '23456789', '!#%+-.:=?@_'];
  const all = classes.join('');
  const chars = classes.map((set) => set[randomInt(set.length)]);
  while (chars.length < 20) chars.push(all[randomInt(all.length)]);
  for (let i = chars.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [chars[i], chars[j]] = [chars[j], chars[i]];
  }
  return chars.join('');
}

/**
 * The password check of Zitadel's session service, shared by CreateSession and the login page so both
 * fail identically: locked and password-less users are refused before the hash is compared, wrong guesses
 * are counted and lock the user at the limit.
 */
export async function checkUserPassword(
  store: Store,
  db: Queryable,
  user: UserRow,
  password: string,
  events?: EventDispatcher,
): Promise<void> {
  if (user.state === 'USER_STATE_LOCKED') throw failedPrecondition('COMMAND-JLK35', 'User is locked');
  if (!user.password_hash) throw failedPrecondition('COMMAND-3nJ4t', 'Password not set');
  if (await passwordMatches(user.password_hash, password)) {
    await store.resetFailedPasswords(db, user.id);
    return;
  }
  const counted = await store.recordFailedPassword(db, user.id, MAX_PASSWORD_ATTEMPTS);
  if (counted?.state === 'USER_STATE_LOCKED') {
    // The lockout is a state change like any other: Zitadel emits user.locked for it.
    events?.userEvent('user.locked', counted);
    throw failedPrecondition('COMMAND-SFA3t', 'User is locked');
  }
  // Zitadel reports wrong passwords with a CredentialsCheckError that counts the failed attempts.
  const attempts = counted?.failed_password_attempts ?? 0;
  throw new ZitadelError(Code.InvalidArgument, 'COMMAND-3M0fs', 'Password is invalid', attempts);
}

/** A deactivated user may not start a session at all, whatever the password. */
export function assertUserCanSignIn(user: UserRow): void {
  if (user.state === 'USER_STATE_INACTIVE') throw failedPrecondition('COMMAND-vgDIu', 'User is not active');
}

/** Compares secrets (tokens, hashes) in constant time. */
export function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
