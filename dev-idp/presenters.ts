import type { IdpContext } from './context.js';
import type { GrantRow, SessionRow, UserRow } from './store.js';

/**
 * Zitadel's JSON shapes. Its gateway emits unpopulated fields too (empty strings, false), and carries
 * uint64 values such as sequences and totals as strings.
 */

export interface Details {
  sequence: string;
  changeDate: string;
  resourceOwner: string;
  creationDate: string;
}

export function details(
  row: { sequence: string; changed_at: Date; created_at: Date },
  resourceOwner: string,
): Details {
  return {
    sequence: String(row.sequence),
    changeDate: row.changed_at.toISOString(),
    resourceOwner,
    creationDate: row.created_at.toISOString(),
  };
}

export function userDetails(user: UserRow): Details {
  return details(user, user.org_id);
}

/** zitadel.user.v2.User */
export function presentUser(user: UserRow) {
  return {
    userId: user.id,
    details: userDetails(user),
    state: user.state,
    username: user.username,
    loginNames: [user.username],
    preferredLoginName: user.username,
    human: {
      profile: {
        givenName: user.given_name,
        familyName: user.family_name,
        nickName: user.nick_name,
        displayName: user.display_name,
        preferredLanguage: user.preferred_language,
        gender: 'GENDER_UNSPECIFIED',
        avatarUrl: '',
      },
      email: { email: user.email, isVerified: user.email_verified },
      phone: { phone: '', isVerified: false },
      passwordChangeRequired: user.password_change_required,
      ...(user.password_changed_at ? { passwordChanged: user.password_changed_at.toISOString() } : {}),
    },
  };
}

/** zitadel.user.v1.UserGrant, as the management API lists it. */
export function presentGrant(ctx: IdpContext, grant: GrantRow, user: UserRow) {
  return {
    id: grant.id,
    details: details(grant, grant.org_id),
    roleKeys: grant.role_keys,
    state: grant.state,
    userId: grant.user_id,
    userName: user.username,
    firstName: user.given_name,
    lastName: user.family_name,
    email: user.email,
    displayName: user.display_name,
    orgId: grant.org_id,
    orgName: ctx.orgName,
    orgDomain: ctx.orgDomain,
    projectId: grant.project_id,
    projectName: ctx.projectName,
    projectGrantId: '',
    avatarUrl: '',
    preferredLoginName: user.username,
    userType: 'TYPE_HUMAN',
    grantedOrgId: grant.org_id,
    grantedOrgName: ctx.orgName,
    grantedOrgDomain: ctx.orgDomain,
  };
}

/** zitadel.session.v2.Session */
export function presentSession(session: SessionRow, user: UserRow) {
  return {
    id: session.id,
    creationDate: session.created_at.toISOString(),
    changeDate: session.changed_at.toISOString(),
    sequence: String(session.sequence),
    factors: {
      user: {
        verifiedAt: session.user_checked_at.toISOString(),
        id: user.id,
        loginName: user.username,
        displayName: user.display_name,
        organizationId: user.org_id,
      },
      ...(session.password_checked_at
        ? { password: { verifiedAt: session.password_checked_at.toISOString() } }
        : {}),
    },
    metadata: {},
    ...(session.user_agent ? { userAgent: session.user_agent } : {}),
    ...(session.expires_at ? { expirationDate: session.expires_at.toISOString() } : {}),
  };
}

/** The role claim value Zitadel puts in tokens: role key → { orgId: orgDomain }. */
export function roleClaims(
  ctx: IdpContext,
  roles: string[],
): Record<string, Record<string, Record<string, string>>> {
  const value = Object.fromEntries(roles.map((role) => [role, { [ctx.orgId]: ctx.orgDomain }]));
  return {
    'urn:zitadel:iam:org:project:roles': value,
    [`urn:zitadel:iam:org:project:${ctx.projectId}:roles`]: value,
  };
}

/** Standard OIDC profile claims, shared by the id_token and userinfo. */
export function profileClaims(user: UserRow) {
  return {
    email: user.email,
    email_verified: user.email_verified,
    preferred_username: user.username,
    name: user.display_name,
    given_name: user.given_name,
    family_name: user.family_name,
    ...(user.nick_name ? { nickname: user.nick_name } : {}),
    ...(user.preferred_language ? { locale: user.preferred_language } : {}),
    updated_at: Math.floor(user.changed_at.getTime() / 1000),
  };
}
