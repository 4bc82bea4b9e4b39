import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { JwtHeader, JwtPayload } from 'jsonwebtoken';
import { Strategy } from 'passport-jwt';
import { UsersService } from '../../users/users.service.js';
import { zitadelClaims } from '../../zitadel/zitadel-oidc.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from '../../zitadel/zitadel-connection.js';
import { ZitadelClient } from '../../zitadel/zitadel.client.js';
import type { ZitadelTokenClaims } from '../../zitadel/zitadel.types.js';
import { PermissionsService } from '../permissions.service.js';
import type { Principal } from '../principal.js';
import { asSecret, bearerToken, carriesOwnKey, jwtHeader, jwtPayload, NotThisStrategy } from './bearer.js';
import { registerAs, STRATEGY_NAMES, unregister, type StrategyNames } from './strategy-names.js';

const NOT_ZITADEL = new NotThisStrategy('not a Zitadel token');

/** `typ` values an access token may carry: RFC 9068's, and the generic one Zitadel writes. */
const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'application/at+jwt', 'jwt']);
/** Claims only an ID token carries (OpenID Connect Core §2, §3.1.3.6, §3.3.2.11); never an access token. */
const ID_TOKEN_CLAIMS = ['nonce', 'at_hash', 'c_hash'] as const;

/**
 * Why a verified Zitadel JWT is not an access token for this API, or null when it is one. An ID token
 * proves a login to the client it was issued to; it is no credential for an API, even though Zitadel
 * puts the project in its `aud` too (the login asks for the project audience scope). Told apart as
 * RFC 9068 §2 and Zitadel's claim matrix do: an access token names the client it was issued to in
 * `client_id` (RFC 9068 §2.2; Zitadel's JWT access tokens also write `azp`) and carries a `jti`, which
 * Zitadel's ID tokens never do; `nonce`, `at_hash` and `c_hash` occur only in ID tokens; and a `typ`, when
 * present, is `at+jwt` or the generic `JWT`. (`auth_time` alone proves nothing: RFC 9068 §2.2.1 lets an
 * access token carry it; with a `nonce` the `nonce` already decides.)
 */
export function notAnAccessToken(header: JwtHeader, payload: JwtPayload): string | null {
  if (header.typ !== undefined && !ACCESS_TOKEN_TYPES.has(String(header.typ).toLowerCase()))
    return `typ ${header.typ}`;
  for (const claim of ID_TOKEN_CLAIMS) if (claim in payload) return `an ID token claim (${claim})`;
  if (typeof payload.client_id !== 'string' && typeof payload.azp !== 'string') return 'no client_id';
  if (typeof payload.jti !== 'string') return 'no jti';
  return null;
}

/**
 * Zitadel-issued JWT access tokens (internal services, clients of Zitadel's own flows): passport-jwt
 * verifies them with jsonwebtoken against Zitadel's JWKS (ZitadelClient.verificationKey: jose's remote
 * JWKS, as KeyObjects, refetched on an unknown `kid`), RS256, issuer and project audience pinned, `exp`
 * required.
 * Only access tokens pass (see notAnAccessToken). Tokens whose unverified issuer is not Zitadel are passed
 * on before any key lookup. When the subject has a local profile, that profile decides: it must be active
 * (a suspended, inactive or deleted user is refused whatever token they hold) and its **current** roles
 * apply, never roles frozen in the token. Only a caller without a local profile (a service account) is
 * authorized by the token's role claims.
 */
@Injectable()
export class ZitadelAccessTokenStrategy extends PassportStrategy(Strategy) implements OnModuleDestroy {
  constructor(
    zitadel: ZitadelClient,
    @Inject(ZITADEL_CONNECTION) private readonly connection: ZitadelConnection,
    private readonly users: UsersService,
    private readonly permissions: PermissionsService,
    @Inject(STRATEGY_NAMES) private readonly names: StrategyNames,
  ) {
    super({
      jwtFromRequest: bearerToken,
      secretOrKeyProvider: (
        _request: unknown,
        token: string,
        done: (error: unknown, key?: Buffer) => void,
      ) => {
        // Routing by the unverified issuer only picks the verifier; jsonwebtoken pins the issuer again.
        const header = jwtHeader(token);
        if (
          !header ||
          jwtPayload(token)?.iss !== zitadel.issuer ||
          typeof header.kid !== 'string' ||
          carriesOwnKey(header)
        ) {
          done(NOT_ZITADEL);
          return;
        }
        // An unreachable JWKS arrives here as a 503 ApiError; the guard answers it as such.
        zitadel.verificationKey(header.kid).then(
          (key) => done(null, asSecret(key)),
          (error: unknown) => done(error),
        );
      },
      algorithms: ['RS256'],
      issuer: zitadel.issuer,
      audience: connection.projectId,
      // The header too, for its `typ`.
      jsonWebTokenOptions: { complete: true },
    });
    registerAs(names.zitadel, this);
  }

  onModuleDestroy(): void {
    unregister(this.names.zitadel);
  }

  async validate(token: { header: JwtHeader; payload: JwtPayload }): Promise<Principal | null> {
    const { header, payload } = token;
    if (notAnAccessToken(header, payload) !== null) return null;
    if (typeof payload.exp !== 'number' || typeof payload.sub !== 'string' || !payload.sub) return null;
    const claims = zitadelClaims(payload, this.connection.projectId);
    return zitadelPrincipal(this.users, this.permissions, claims, this.connection.orgId);
  }
}

/**
 * The caller behind a Zitadel access token (JWT or opaque), or null. When the subject has a local profile,
 * that profile decides: it must be active and its current roles apply, never roles frozen in the token.
 * Only a caller without a local profile (a service account) is authorized by the token's role claims.
 */
export async function zitadelPrincipal(
  users: UsersService,
  permissions: PermissionsService,
  token: Pick<ZitadelTokenClaims, 'sub' | 'roles' | 'orgId'>,
  defaultOrgId: string,
): Promise<Principal | null> {
  const user = await users.readByZitadelId(token.sub);
  if (user && user.status !== 'active') return null;
  const roles = user ? user.roles : token.roles;
  // The profile's organization; without one, the token's resource owner, else the configured organization.
  const orgId = user?.orgId ?? token.orgId ?? defaultOrgId;
  return {
    userId: user?.id ?? null,
    zitadelId: token.sub,
    sessionId: null,
    roles,
    orgId,
    botId: null,
    permissions: permissions.forRoles(roles, orgId),
    tokenKind: 'zitadel',
  };
}
