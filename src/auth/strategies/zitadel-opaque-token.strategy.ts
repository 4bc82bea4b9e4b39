import { createHash } from 'node:crypto';
import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { LRUCache } from 'lru-cache';
import passport from 'passport';
import { ApiError } from '../../common/errors/api-error.js';
import type { AppConfig } from '../../config/app-config.js';
import { UsersService } from '../../users/users.service.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from '../../zitadel/zitadel-connection.js';
import { ZitadelClient, ZitadelError } from '../../zitadel/zitadel.client.js';
import type { ZitadelTokenClaims } from '../../zitadel/zitadel.types.js';
import { PermissionsService } from '../permissions.service.js';
import type { Principal } from '../principal.js';
import { bearerToken, jwtHeader, NotThisStrategy } from './bearer.js';
import { registerAs, STRATEGY_NAMES, unregister, type StrategyNames } from './strategy-names.js';
import { zitadelPrincipal } from './zitadel-access-token.strategy.js';

const NOT_OPAQUE = new NotThisStrategy('a JWT, for the other strategies');
const INACTIVE = new NotThisStrategy('Zitadel says the token is not active');
const NOT_FOR_US = new NotThisStrategy('the token is not for this project');

/**
 * What an opaque access token can look like: RFC 6750's b64token characters, and no longer than any token
 * Zitadel issues (well under 1 KiB). Anything else is refused before Zitadel is asked: a garbage bearer of
 * 60 KiB must cost a regex, not an introspection call (it answered 500 once: the fuzzer found it).
 */
const OPAQUE_TOKEN = /^[A-Za-z0-9\-._~+/]{16,2048}=*$/;

/** Active tokens remembered at once; each entry lives at most the configured seconds, never past its exp. */
const CACHE_SIZE = 10_000;

/**
 * Zitadel's opaque access tokens (Zitadel's default token type "Bearer": machine users with client
 * credentials, apps left at the default), which only Zitadel can read: RFC 7662 introspection through
 * ZitadelClient.introspectToken (openid-client, authenticated as this service's API app). JWTs are left to
 * the two JWT strategies, so an ID token never reaches introspection (and is refused there). An active
 * answer must name this service's project in `aud` and Zitadel as issuer; then the same rules as for JWT
 * access tokens apply (zitadelPrincipal: a local profile's status and current roles decide).
 *
 * Active answers are cached briefly (positive only, ZITADEL_INTROSPECTION_CACHE_SECONDS, never beyond the
 * token's `exp`), keyed by the token's SHA-256; an inactive answer is never cached, so a token that
 * becomes valid is not refused longer than necessary, and a revoked one stops working once its entry ends.
 * Zitadel unreachable: the 503 ApiError goes to the guard, which answers 503 rather than 401.
 */
@Injectable()
export class ZitadelOpaqueTokenStrategy extends passport.Strategy implements OnModuleDestroy {
  private readonly active: LRUCache<string, ZitadelTokenClaims> | null;
  private readonly cacheMs: number;

  constructor(
    private readonly zitadel: ZitadelClient,
    @Inject(ZITADEL_CONNECTION) private readonly connection: ZitadelConnection,
    private readonly users: UsersService,
    private readonly permissions: PermissionsService,
    config: ConfigService<AppConfig, true>,
    @Inject(STRATEGY_NAMES) private readonly names: StrategyNames,
  ) {
    super();
    this.cacheMs = config.get('zitadel', { infer: true }).introspectionCacheSeconds * 1000;
    this.active = this.cacheMs > 0 ? new LRUCache({ max: CACHE_SIZE, ttl: this.cacheMs }) : null;
    registerAs(names.introspection, this);
  }

  onModuleDestroy(): void {
    unregister(this.names.introspection);
  }

  override authenticate(request: Parameters<typeof bearerToken>[0]): void {
    const token = bearerToken(request);
    if (!token || jwtHeader(token) || !OPAQUE_TOKEN.test(token)) {
      this.fail(NOT_OPAQUE, 401);
      return;
    }
    this.principal(token).then(
      (principal) =>
        principal instanceof NotThisStrategy ? this.fail(principal, 401) : this.success(principal),
      (error: unknown) => {
        // An outage is a 503 (the guard prefers it to a 401); Zitadel refusing the request is a 401.
        if (error instanceof ApiError) this.fail(error, 503);
        else if (error instanceof ZitadelError) this.fail(new NotThisStrategy(error.message), 401);
        else this.error(error);
      },
    );
  }

  private async principal(token: string): Promise<Principal | NotThisStrategy> {
    const key = createHash('sha256').update(token).digest('base64url');
    let claims = this.active?.get(key);
    if (!claims) {
      const answer = await this.zitadel.introspectToken(token);
      if (!answer) return INACTIVE;
      if (answer.iss !== this.zitadel.issuer || !answer.aud.includes(this.connection.projectId))
        return NOT_FOR_US;
      claims = answer;
      const left = claims.exp * 1000 - Date.now();
      if (left <= 0) return INACTIVE;
      this.active?.set(key, claims, { ttl: Math.min(this.cacheMs, left) });
    } else if (claims.exp * 1000 <= Date.now()) {
      this.active?.delete(key);
      return INACTIVE;
    }
    return (await zitadelPrincipal(this.users, this.permissions, claims, this.connection.orgId)) ?? INACTIVE;
  }
}
