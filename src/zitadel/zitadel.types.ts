/**
 * Zitadel's user model as this service uses it, flattened from the v2 API's JSON
 * (`user{userId, state, username, human{profile, email}}`). Ids are numeric strings, never UUIDs.
 */
export type ZitadelUserState =
  | 'USER_STATE_UNSPECIFIED'
  | 'USER_STATE_ACTIVE'
  | 'USER_STATE_INACTIVE'
  | 'USER_STATE_DELETED'
  | 'USER_STATE_LOCKED'
  | 'USER_STATE_INITIAL';

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

export interface HumanUserChanges {
  username?: string;
  email?: string;
  givenName?: string;
  familyName?: string;
  displayName?: string;
}

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

/**
 * A user's enrolled authentication methods (user v2 `ListAuthenticationMethodTypes`,
 * `authMethodTypes`), by the enum value's name.
 */
export type AuthenticationMethodType =
  | 'AUTHENTICATION_METHOD_TYPE_UNSPECIFIED'
  | 'AUTHENTICATION_METHOD_TYPE_PASSWORD'
  | 'AUTHENTICATION_METHOD_TYPE_PASSKEY'
  | 'AUTHENTICATION_METHOD_TYPE_IDP'
  | 'AUTHENTICATION_METHOD_TYPE_TOTP'
  | 'AUTHENTICATION_METHOD_TYPE_U2F'
  | 'AUTHENTICATION_METHOD_TYPE_OTP_SMS'
  | 'AUTHENTICATION_METHOD_TYPE_OTP_EMAIL'
  | 'AUTHENTICATION_METHOD_TYPE_RECOVERY_CODE';

/**
 * The parts of Zitadel's login policy (settings v2 `GetLoginSettings`) that decide
 * whether a password alone may open a session. Zitadel's JSON leaves false booleans out: absent means false.
 */
export interface LoginSettings {
  allowUsernamePassword: boolean;
  allowExternalIdp: boolean;
  forceMfa: boolean;
  /** forceMfa applies only to local logins (password); an external IdP login is not asked for MFA. */
  forceMfaLocalOnly: boolean;
}

/**
 * Zitadel's password complexity policy (settings v2 `GetPasswordComplexitySettings`,
 * `GET /v2/settings/password/complexity` → `{details, settings{minLength, requiresUppercase, requiresLowercase,
 * requiresNumber, requiresSymbol, resourceOwnerType}}`). `minLength` is a uint64, so a JSON string; false
 * booleans may be left out.
 */
export interface PasswordComplexitySettings {
  minLength: number;
  requiresUppercase: boolean;
  requiresLowercase: boolean;
  requiresNumber: boolean;
  requiresSymbol: boolean;
}

/**
 * What proves a password change to Zitadel (user v2 `SetPassword`, `POST /v2/users/{userId}/password`, the
 * `verification` oneof): the current password, or the code of a password reset (`PasswordReset`).
 */
export type PasswordVerification = { currentPassword: string } | { verificationCode: string };

/** An organization the service account may read (org v2 `ListOrganizations`). */
export interface ZitadelOrganization {
  id: string;
  name: string;
}
