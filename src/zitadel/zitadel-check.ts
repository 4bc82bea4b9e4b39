import { describe } from './resilience.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { ZitadelClient, ZitadelError } from './zitadel.client.js';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
}

/**
 * `npm run zitadel:check`: calls each Zitadel API this service needs once, read-only, with the configured
 * credentials, and says what works. Writes (AddHumanUser, CreateSession, authorization changes) are not
 * tried, so as to leave the installation untouched; the permissions they need are listed with the reads.
 */
export async function checkZitadel(connection: ZitadelConnection): Promise<CheckResult[]> {
  const zitadel = new ZitadelClient(connection);
  const results: CheckResult[] = [];
  const check = async <T>(
    name: string,
    call: () => Promise<T>,
    ok: (value: T) => string,
  ): Promise<T | undefined> => {
    try {
      const value = await call();
      results.push({ name, ok: true, detail: ok(value) });
      return value;
    } catch (error) {
      const hint =
        error instanceof ZitadelError && error.kind === 'permission_denied'
          ? ' (the service account lacks the permission)'
          : error instanceof ZitadelError && error.kind === 'unauthenticated'
            ? ' (the credentials are refused)'
            : '';
      results.push({ name, ok: false, detail: `${describe(error)}${hint}` });
      return undefined;
    }
  };

  await check(
    'OIDC discovery (/.well-known/openid-configuration) and authorization URL',
    () => zitadel.authorizationUrl({ state: 'check', nonce: 'check', codeChallenge: 'check' }),
    (url) => new URL(url).origin + new URL(url).pathname,
  );
  await check(
    'settings v2 GetLoginSettings (policy.read)',
    () => zitadel.getLoginSettings(),
    (s) =>
      `password logins ${s.allowUsernamePassword ? 'allowed' : 'not allowed'}, MFA ${s.forceMfa ? 'forced' : 'optional'}`,
  );
  const page = await check(
    'user v2 ListUsers in the organization (user.read; also the service-account token itself)',
    () => zitadel.listUsers({ offset: 0, limit: 1 }),
    (p) => `${p.total} user(s)`,
  );
  const user = page?.users[0];
  if (user) {
    await check(
      'user v2 GetUserByID (user.read)',
      () => zitadel.getUser(user.userId),
      (u) => u?.state ?? 'gone',
    );
    await check(
      'user v2 ListAuthenticationMethodTypes (user.read)',
      () => zitadel.listAuthenticationMethodTypes(user.userId),
      (m) => m.join(', ') || 'none',
    );
    await check(
      'authorization v2beta ListAuthorizations of a user (user.grant.read)',
      () => zitadel.getUserRoles(user.userId),
      (roles) => `roles: ${roles.join(', ') || 'none'}`,
    );
  }
  await check(
    'authorization v2beta ListAuthorizations of the project (user.grant.read)',
    () => zitadel.listProjectGrants({ offset: 0, limit: 1 }),
    (p) => `${p.total} authorization(s) in project ${connection.projectId}`,
  );
  if (connection.introspection) {
    await check(
      'OAuth introspection as the API app (RFC 7662)',
      () => zitadel.introspectToken('zitadel-check-not-a-token'),
      (claims) =>
        claims === null ? 'credentials accepted (a made-up token is inactive)' : 'unexpectedly active',
    );
  } else {
    results.push({
      name: 'OAuth introspection as the API app (RFC 7662)',
      ok: false,
      detail:
        'not configured (ZITADEL_INTROSPECTION_CLIENT_ID/_SECRET): opaque access tokens will be refused',
    });
  }
  return results;
}
