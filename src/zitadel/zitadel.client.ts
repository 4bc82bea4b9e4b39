import type { KeyObject } from 'node:crypto';
import type {
  AuthenticationMethodType,
  HumanUserChanges,
  LoginSettings,
  NewHumanUser,
  OidcTokens,
  PasswordCheck,
  ZitadelErrorKind,
  ZitadelOrganization,
  ZitadelTokenClaims,
  ZitadelUser,
} from './zitadel.types.js';

/**
 * Zitadel wants a given and a family name for every human; this API has one display name. The first word
 * is the given name, the rest the family name (the given name again for a one-word name).
 */
export function namesFromDisplayName(displayName: string): Pick<NewHumanUser, 'givenName' | 'familyName'> {
  const [givenName, ...rest] = displayName.split(/\s+/);
  return { givenName, familyName: rest.join(' ') || givenName };
}

/** A Zitadel answer callers may branch on; `errorId` is Zitadel's own (e.g. `COMMAND-3M0fs`). */
export class ZitadelError extends Error {
  override readonly name = 'ZitadelError';
  constructor(
    readonly kind: ZitadelErrorKind,
    readonly httpStatus: number,
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

/**
 * Zitadel's v2 REST API and OIDC endpoints, as this service uses them. Implemented by ConnectZitadelClient;
 * tests run it against the embedded development identity provider (dev-idp/), which speaks the same paths.
 */
export abstract class ZitadelClient {
  /** The OIDC issuer (Zitadel's base URL), which its tokens carry as `iss`. */
  abstract readonly issuer: string;

  abstract addHumanUser(user: NewHumanUser): Promise<{ userId: string; emailCode?: string }>;
  /** null when Zitadel does not know the id (or the user is deleted). */
  abstract getUser(userId: string): Promise<ZitadelUser | null>;
  /** A page of the users of one organization (the configured one when `orgId` is omitted). */
  abstract listUsers(page: {
    offset: number;
    limit: number;
    orgId?: string;
  }): Promise<{ total: number; users: ZitadelUser[] }>;
  /** A page of the organizations the service account may read, oldest first. */
  abstract listOrganizations(page: {
    offset: number;
    limit: number;
  }): Promise<{ total: number; organizations: ZitadelOrganization[] }>;
  /** Creates an organization (tests and the development IdP's seeding; the service never calls it). */
  abstract addOrganization(name: string): Promise<{ orgId: string }>;
  abstract updateHumanUser(userId: string, changes: HumanUserChanges): Promise<void>;
  /** Each of these succeeds when the user is already in the target state (they are retried safely). */
  abstract deactivateUser(userId: string): Promise<void>;
  abstract reactivateUser(userId: string): Promise<void>;
  abstract lockUser(userId: string): Promise<void>;
  abstract unlockUser(userId: string): Promise<void>;
  abstract deleteUser(userId: string): Promise<void>;
  abstract setPassword(userId: string, password: string, changeRequired: boolean): Promise<void>;
  /** Throws ZitadelError kind invalid_argument for a wrong or expired code. */
  abstract verifyEmail(userId: string, code: string): Promise<void>;
  /** Throws InvalidCredentialsError or UserBlockedError. */
  abstract checkPassword(
    loginName: string,
    password: string,
    userAgent?: { ip?: string; description?: string },
  ): Promise<PasswordCheck>;
  abstract deleteSession(sessionId: string, sessionToken?: string): Promise<void>;
  /** The user's enrolled authentication methods: password, TOTP, U2F, OTP by SMS or email, IdP links, … */
  abstract listAuthenticationMethodTypes(userId: string): Promise<AuthenticationMethodType[]>;
  /** The login policy in force for the configured organization. */
  abstract getLoginSettings(): Promise<LoginSettings>;
  /**
   * The user's role keys in the configured project. Role grants belong to the user's organization:
   * `orgId` names it (omitted: the configured organization).
   */
  abstract getUserRoles(userId: string, orgId?: string): Promise<string[]>;
  /** Replaces the user's role keys in the configured project (`orgId`: the user's organization). */
  abstract setUserRoles(userId: string, roles: string[], orgId?: string): Promise<void>;
  /**
   * A page of the configured project's role grants, oldest first: the active roles of each grant's user
   * (an inactive grant lists none). Lets reconciliation read everyone's roles without a call per user.
   */
  abstract listProjectGrants(page: {
    offset: number;
    limit: number;
    /** The organization whose grants to list; omitted: the configured one. */
    orgId?: string;
  }): Promise<{ total: number; grants: Array<{ userId: string; roles: string[] }> }>;

  abstract authorizationUrl(params: {
    state: string;
    nonce: string;
    codeChallenge: string;
    loginHint?: string;
  }): Promise<string>;
  /** Checks the ID token's claims (iss, aud, azp, exp, nonce); verifyIdToken checks its signature. */
  abstract exchangeCode(params: { code: string; codeVerifier: string; nonce: string }): Promise<OidcTokens>;
  /** Verifies signature (JWKS), issuer, audience (our client id), expiry and nonce. */
  abstract verifyIdToken(idToken: string, nonce: string): Promise<ZitadelTokenClaims>;
  /**
   * The public key Zitadel signs with under this `kid`, from its JWKS (cached; an unknown kid refetches,
   * rate-limited). A kid the JWKS lacks is a ZitadelError (unauthenticated); an unreachable JWKS a 503.
   */
  abstract verificationKey(kid: string): Promise<KeyObject>;
  abstract endSessionUrl(params: { idTokenHint: string; postLogoutRedirectUri?: string }): Promise<string>;
  /**
   * RFC 7662 introspection of an opaque access token (as this service's API app): its claims when Zitadel
   * says it is active, null when not (or when no introspection credentials are configured). 503 on an outage.
   */
  abstract introspectToken(token: string): Promise<ZitadelTokenClaims | null>;
}
