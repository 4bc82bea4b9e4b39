import type { Organization } from '@zitadel/proto/zitadel/org/v2/org_pb.js';
import type { LoginSettings as ProtoLoginSettings } from '@zitadel/proto/zitadel/settings/v2/login_settings_pb.js';
import type { PasswordComplexitySettings as ProtoPasswordComplexity } from '@zitadel/proto/zitadel/settings/v2/password_settings_pb.js';
import type { AuthenticationMethodTypeJson } from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import type { UserStateJson } from '@zitadel/proto/zitadel/user/v2/user_pb.js';

/**
 * Zitadel's user model as this service uses it, flattened from user v2's `User` (`@zitadel/proto`). Ids are
 * numeric strings, never UUIDs. Enum values travel by their proto names (`USER_STATE_ACTIVE`).
 */
export type ZitadelUserState = UserStateJson;

export interface ZitadelUser {
  userId: string;
  /** The organization the user belongs to (Zitadel's resource owner, `details.resourceOwner`). */
  orgId: string;
  state: ZitadelUserState;
  username: string;
  email: string;
  emailVerified: boolean;
  givenName: string;
  familyName: string;
  displayName: string;
  avatarUrl?: string;
  preferredLanguage?: string;
}

export interface NewHumanUser {
  /** The organization to create the user in; omitted: the configured one (ZITADEL_ORG_ID). */
  orgId?: string;
  username: string;
  email: string;
  givenName: string;
  familyName: string;
  displayName?: string;
  preferredLanguage?: string;
  /** Omitted: Zitadel sends an invitation / initialization mail instead. */
  password?: string;
  /** send_code: Zitadel mails a verification code; return_code: it is returned (tests); verified: trusted. */
  emailVerification: 'send_code' | 'return_code' | 'verified';
}

/** What an update may change of a human user: the fields of NewHumanUser, each optional. */
export type HumanUserChanges = Partial<
  Pick<NewHumanUser, 'username' | 'email' | 'givenName' | 'familyName' | 'displayName'>
>;

/** Result of a successful password check through Zitadel's session API. */
export interface PasswordCheck {
  sessionId: string;
  sessionToken: string;
  userId: string;
}

export interface OidcTokens {
  idToken: string;
  accessToken: string;
  expiresIn: number;
}

/** The claims of a verified Zitadel ID or access token that this service reads. */
export interface ZitadelTokenClaims {
  sub: string;
  iss: string;
  aud: string[];
  exp: number;
  email?: string;
  nonce?: string;
  /** Role keys from `urn:zitadel:iam:org:project:roles` / `urn:zitadel:iam:org:project:{id}:roles`. */
  roles: string[];
  /** The subject's organization, `urn:zitadel:iam:user:resourceowner:id`, when the token carries it. */
  orgId?: string;
}

/**
 * What Zitadel answered, reduced to what callers branch on. `unavailable` (network, timeout, 5xx) and
 * `already_exists` never reach callers as ZitadelErrors: the client turns them into 503 and 409 ApiErrors.
 */
export type ZitadelErrorKind =
  | 'not_found'
  | 'invalid_argument'
  | 'failed_precondition'
  | 'unauthenticated'
  | 'permission_denied'
  | 'unknown';

/** A user's enrolled authentication methods (user v2 `ListAuthenticationMethodTypes`), by proto name. */
export type AuthenticationMethodType = AuthenticationMethodTypeJson;

/**
 * The parts of Zitadel's login policy (settings v2 `LoginSettings`) that decide whether a password alone may
 * open a session; `forceMfaLocalOnly`: MFA is forced on local (password) logins only.
 */
export type LoginSettings = Pick<
  ProtoLoginSettings,
  'allowUsernamePassword' | 'allowExternalIdp' | 'forceMfa' | 'forceMfaLocalOnly'
>;

/** Zitadel's password complexity policy (settings v2 `PasswordComplexitySettings`), `minLength` as a number. */
export type PasswordComplexitySettings = Pick<
  ProtoPasswordComplexity,
  'requiresUppercase' | 'requiresLowercase' | 'requiresNumber' | 'requiresSymbol'
> & { minLength: number };

/**
 * What proves a password change to Zitadel (user v2 `SetPassword`, `POST /v2/users/{userId}/password`, the
 * `verification` oneof): the current password, or the code of a password reset (`PasswordReset`).
 */
export type PasswordVerification = { currentPassword: string } | { verificationCode: string };

/** An organization the service account may read (org v2 `ListOrganizations`). */
export type ZitadelOrganization = Pick<Organization, 'id' | 'name'>;
