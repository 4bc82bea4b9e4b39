import type { ZitadelErrorKind } from './zitadel.types.js';

/** A Zitadel answer callers may branch on; `errorId` is Zitadel's own (e.g. `COMMAND-3M0fs`). */
export class ZitadelError extends Error {
  override readonly name = 'ZitadelError';
  constructor(
    readonly kind: ZitadelErrorKind,
    readonly errorId: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Wrong password or unknown login name: deliberately indistinguishable. */
export class InvalidCredentialsError extends Error {
  override readonly name = 'InvalidCredentialsError';
}

/** The password was right but Zitadel refuses the user (locked, deactivated, not initialised). */
export class UserBlockedError extends Error {
  override readonly name = 'UserBlockedError';
  constructor(readonly reason: 'locked' | 'inactive' | 'initial') {
    super(`user is ${reason}`);
  }
}
