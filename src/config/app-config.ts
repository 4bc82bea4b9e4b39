import { isIP } from 'node:net';
import { z } from 'zod';
import { isSigningKeyText } from '../auth/session-signing-key.js';

/**
 * The whole runtime configuration, parsed once at boot from environment variables.
 * Every consumer reads this typed object (through ConfigService<AppConfig, true>), never process.env,
 * so a bad value fails at start-up with the variable's name instead of at first use.
 */
/** A boolean flag; undefined when unset so that defaults may depend on other variables. */
const flag = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .optional()
  .transform((v) => (v === undefined ? undefined : ['true', '1', 'yes'].includes(v)));

const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).optional().default(fallback);

/** `LIMIT/WINDOW`, the window in seconds or with a unit: `10/60`, `10/1m`, `5/1h`, `100/30s`. */
const rateLimit = (fallback: string) =>
  z
    .string()
    .regex(/^\d+\/\d+[smh]?$/, 'must be LIMIT/WINDOW such as 10/1m, 5/1h or 100/30s')
    .default(fallback)
    .transform((value, context) => {
      const [, limit, amount, unit] = /^(\d+)\/(\d+)([smh]?)$/.exec(value)!;
      const windowSeconds = Number(amount) * ({ s: 1, m: 60, h: 3600 }[unit || 's'] ?? 1);
      if (Number(limit) < 1 || windowSeconds < 1 || windowSeconds > 86_400) {
        context.addIssue({ code: 'custom', message: 'needs a limit ≥ 1 and a window of 1 s to 24 h' });
        return z.NEVER;
      }
      return { limit: Number(limit), windowSeconds };
    });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(3000, 0, 65535),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: int(1_048_576, 1024, 50 * 1_048_576),
  JSON_BODY_LIMIT_BYTES: int(16_384, 1024, 1_048_576),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DEV_IDP_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DB_MIGRATIONS_RUN: flag,
  DB_POOL_MAX: int(10, 1, 200),
  DB_STATEMENT_TIMEOUT_MS: int(10_000, 0, 600_000),
  DB_CONNECT_TIMEOUT_MS: int(5_000, 100, 60_000),
  CACHE_ENABLED: flag,
  CACHE_MAX_AGE_MS: int(30_000, 1_000, 3_600_000),
  CACHE_MAX_ENTRIES: int(10_000, 100, 10_000_000),
  CACHE_LISTEN_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  METRICS_PUBLIC: flag,
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),

  ZITADEL_URL: z.url({ message: 'must be a URL' }).optional(),
  ZITADEL_ORG_ID: z.string().min(1).optional(),
  ZITADEL_PROJECT_ID: z.string().min(1).optional(),
  ZITADEL_CLIENT_ID: z.string().min(1).optional(),
  ZITADEL_CLIENT_SECRET: z.string().min(1).optional(),
  ZITADEL_REDIRECT_URI: z.url({ message: 'must be a URL' }).optional(),
  ZITADEL_POST_LOGOUT_REDIRECT_URI: z.url({ message: 'must be a URL' }).optional(),
  ZITADEL_PAT: z.string().min(1).optional(),
  ZITADEL_KEY_FILE: z.string().min(1).optional(),
  ZITADEL_INTROSPECTION_CLIENT_ID: z.string().min(1).optional(),
  ZITADEL_INTROSPECTION_CLIENT_SECRET: z.string().min(1).optional(),
  ZITADEL_INTROSPECTION_CACHE_SECONDS: int(30, 0, 300),
  ZITADEL_TIMEOUT_MS: int(5_000, 100, 60_000),
  ZITADEL_RETRIES: int(2, 0, 5),

  ADMIN_EMAIL: z.email({ message: 'must be an email address' }).default('admin@localhost.test'),
  ADMIN_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
  ADMIN_PASSWORD_RESET: flag,
  REGISTRATION_ENABLED: flag,

  SESSION_SIGNING_KEY: z
    .string()
    .refine(isSigningKeyText, {
      message: 'must be a secret of at least 256 bits in base64 (HS256) or a PEM private key (ES256/RS256)',
    })
    .optional(),
  SESSION_SIGNING_KEY_FILE: z.string().min(1).optional(),
  CURSOR_SIGNING_KEY: z.string().min(32, 'must be at least 32 characters').optional(),
  SESSION_ISSUER: z.string().min(1).default('users-api'),
  SESSION_AUDIENCE: z.string().min(1).default('users-api'),
  SESSION_TTL_SECONDS: int(12 * 3600, 60, 90 * 86_400),
  LOGIN_REDIRECT_URL: z
    .string()
    .max(2048)
    .refine(
      (value) => /^\/(?![/\\])/.test(value) || /^https?:\/\/[^\s]+$/.test(value),
      'must be a path such as / or an http(s) URL',
    )
    .default('/'),
  SESSION_REMEMBER_ME_TTL_SECONDS: int(30 * 86_400, 60, 365 * 86_400),
  LOGIN_FAILURE_MIN_MS: int(400, 0, 5_000),
  ROLE_PERMISSIONS: z.string().optional(),
  SUSPENSION_CHECK_INTERVAL_MS: int(30_000, 100, 3_600_000),
  USER_SEARCH_COUNT_LIMIT: int(1_000, 1, 1_000_000),

  TRUST_PROXY: z.string().optional(),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  REDIS_KEY_PREFIX: z.string().min(1).max(100).default('users-api:'),
  REDIS_TIMEOUT_MS: int(500, 50, 10_000),
  RATE_LIMIT_LOGIN: rateLimit('10/1m'),
  RATE_LIMIT_LOGIN_FAILURES: rateLimit('5/15m'),
  RATE_LIMIT_REGISTER: rateLimit('5/1h'),
  RATE_LIMIT_USER_LIST: rateLimit('60/1m'),
  RATE_LIMIT_USER_UPDATE: rateLimit('30/1m'),
  RATE_LIMIT_DEFAULT: rateLimit('300/1m'),

  ZITADEL_WEBHOOK_SIGNING_KEY: z.string().min(16, 'must be at least 16 characters').optional(),
  ZITADEL_RECONCILE_INTERVAL_SECONDS: int(300, 0, 86_400),
  ZITADEL_RECONCILE_PAGE_SIZE: int(100, 1, 1000),
  ZITADEL_RECONCILE_PAGE_DELAY_MS: int(250, 0, 60_000),
});

/**
 * Every permission the platform knows; roles map onto these through ROLE_PERMISSIONS. `admin:*` apply
 * within the caller's own organization; `iam:users` spans every organization (instance-wide) and counts
 * only for callers of the configured organization (ZITADEL_ORG_ID), see PermissionsService.
 */
export const PERMISSIONS = [
  'iam:users',
  'admin:users',
  'admin:groups',
  'admin:bots',
  'admin:config',
  'admin:monitor',
  'admin:backup',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Instance-wide permissions: only roles that name them explicitly hold them. */
export const INSTANCE_PERMISSIONS: readonly Permission[] = ['iam:users'];

const DEFAULT_ROLE_PERMISSIONS: Record<string, Permission[]> = {
  iam_admin: [...PERMISSIONS],
  admin: PERMISSIONS.filter((p) => !INSTANCE_PERMISSIONS.includes(p)),
  manager: ['admin:monitor'],
  user: [],
};

const rolePermissionsSchema = z.record(z.string().min(1), z.array(z.enum(PERMISSIONS)));

export type Environment = Record<string, string | undefined>;

/** Fastify's `trustProxy`: false, true (any proxy: only behind one that overwrites X-Forwarded-For), a hop count, or addresses. */
export type TrustProxy = boolean | number | string[];

const PROXY_ADDR_KEYWORDS = ['loopback', 'linklocal', 'uniquelocal'];

function parseTrustProxy(value: string | undefined): TrustProxy | { problem: string } {
  if (value === undefined || ['false', '0', 'no'].includes(value)) return false;
  if (['true', 'yes'].includes(value)) return true;
  if (/^\d+$/.test(value)) return Number(value);
  const entries = value.split(',').map((entry) => entry.trim());
  const bad = entries.filter((entry) => {
    if (PROXY_ADDR_KEYWORDS.includes(entry)) return false;
    const [address, bits, extra] = entry.split('/');
    const version = isIP(address ?? '');
    if (!version || extra !== undefined) return true;
    return bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= (version === 4 ? 32 : 128));
  });
  if (bad.length || !entries.length) {
    return {
      problem:
        'TRUST_PROXY: must be false, true, a hop count, or a comma-separated list of addresses, CIDRs ' +
        `or loopback/linklocal/uniquelocal (bad: ${bad.join(', ') || 'empty'})`,
    };
  }
  return entries;
}

export interface RateLimitSetting {
  limit: number;
  windowSeconds: number;
}

export interface AppConfig {
  nodeEnv: 'development' | 'test' | 'production';
  http: {
    host: string;
    port: number;
    /** The ceiling for any body (avatars have their own, smaller limit). */
    bodyLimitBytes: number;
    /** JSON bodies: at most this and bodyLimitBytes. */
    jsonBodyLimitBytes: number;
    trustProxy: TrustProxy;
  };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  database: {
    /** Unset means: run the embedded PostgreSQL server under dataDir (development and tests only). */
    url: string | undefined;
    dataDir: string;
    migrationsRun: boolean;
    poolMax: number;
    statementTimeoutMs: number;
    connectTimeoutMs: number;
    /**
     * The in-process cache of sessions and user rows, kept coherent by PostgreSQL LISTEN/NOTIFY (see
     * change-feed/). Off: every token check and profile read goes to the database.
     */
    cache: {
      enabled: boolean;
      maxAgeMs: number;
      maxEntries: number;
      /** The change listener's own connection (LISTEN needs a session: not through a transaction pooler). */
      listenUrl: string | undefined;
    };
  };
  metrics: { public: boolean; token: string | undefined };
  zitadel: {
    /** Unset (outside production): the embedded development identity provider stands in. */
    url: string | undefined;
    /**
     * The embedded identity provider's own database (as a real Zitadel has its own). Unset: database
     * `dev_idp` on the embedded server, or `<DATABASE_URL's database>_dev_idp` on the DATABASE_URL server.
     */
    devIdpDatabaseUrl: string | undefined;
    orgId: string | undefined;
    projectId: string | undefined;
    clientId: string;
    clientSecret: string | undefined;
    redirectUri: string;
    postLogoutRedirectUri: string | undefined;
    pat: string | undefined;
    keyFile: string | undefined;
    timeoutMs: number;
    retries: number;
    /** This service's API app, for RFC 7662 introspection of opaque access tokens (both or neither). */
    introspection?: { clientId: string; clientSecret: string };
    /** How long an active introspection answer is reused (never past the token's exp); 0: not at all. */
    introspectionCacheSeconds: number;
  };
  auth: {
    adminEmail: string;
    adminPassword: string | undefined;
    /** The embedded identity provider replaces an existing admin's password with adminPassword. */
    adminPasswordReset: boolean;
    registrationEnabled: boolean;
    /**
     * What signs session tokens: a base64 secret of at least 256 bits (HS256) or a PEM private key (ES256,
     * RS256); unset: a secret generated once under dataDir (not in production).
     */
    signingKey: string | undefined;
    signingKeyFile: string | undefined;
    issuer: string;
    audience: string;
    sessionTtlSeconds: number;
    rememberMeTtlSeconds: number;
    loginFailureMinMs: number;
    /** `redirect_url` of a password login's answer: where the client goes next. */
    loginRedirectUrl: string;
    rolePermissions: Record<string, Permission[]>;
  };
  users: {
    /** How often expired suspensions (`until`) are looked for and lifted. */
    suspensionCheckIntervalMs: number;
    /** A search counts its matches up to this many; past it, `total` is this and `total_exact` false. */
    searchCountLimit: number;
    /**
     * HMAC key of list cursors. Unset: derived from the session signing key when one is configured,
     * else generated once under dataDir (see loadCursorKey).
     */
    cursorSigningKey: string | undefined;
  };
  /** Unset url: no Redis; rate limits count per instance. */
  redis: { url: string | undefined; keyPrefix: string; timeoutMs: number };
  rateLimits: {
    login: RateLimitSetting;
    /**
     * Failed logins per account and client IP; past the limit that pair is refused (429) before Zitadel
     * sees the password, for the rest of the window. Keep it below Zitadel's lockout threshold.
     */
    loginFailures: RateLimitSetting;
    register: RateLimitSetting;
    userList: RateLimitSetting;
    userUpdate: RateLimitSetting;
    default: RateLimitSetting;
  };
  zitadelSync: {
    /**
     * Key of the Actions v2 target that signs webhook events. Unset with a real Zitadel: the event
     * endpoint answers 404. Unset in embedded mode: generated at start and shared with the dev-idp.
     */
    webhookSigningKey: string | undefined;
    /** Seconds between reconciliation runs; 0 disables them. */
    reconcileIntervalSeconds: number;
    reconcilePageSize: number;
    reconcilePageDelayMs: number;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Parses and validates the environment; throws a ConfigError naming every bad variable. */
export function parseAppConfig(env: Environment): AppConfig {
  // Empty strings mean "unset", as in most deployment tooling (`FOO=` in a compose file).
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = envSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const e = result.data;
  const production = e.NODE_ENV === 'production';
  const problems: string[] = [];
  let rolePermissions = DEFAULT_ROLE_PERMISSIONS;
  if (e.ROLE_PERMISSIONS) {
    try {
      const parsed = rolePermissionsSchema.safeParse(JSON.parse(e.ROLE_PERMISSIONS));
      if (parsed.success) rolePermissions = parsed.data;
      else problems.push(`ROLE_PERMISSIONS: ${parsed.error.issues.map((i) => i.message).join(', ')}`);
    } catch {
      problems.push('ROLE_PERMISSIONS: must be JSON such as {"admin": ["admin:users"]}');
    }
  }
  const trustProxy = parseTrustProxy(e.TRUST_PROXY);
  if (typeof trustProxy === 'object' && 'problem' in trustProxy) problems.push(trustProxy.problem);
  if (production && !e.DATABASE_URL) {
    problems.push('DATABASE_URL: required in production (the embedded PostgreSQL is for development)');
  }
  if (production && !e.ZITADEL_URL) {
    problems.push('ZITADEL_URL: required in production (the embedded identity provider is for development)');
  }
  if (e.ZITADEL_URL) {
    for (const name of ['ZITADEL_ORG_ID', 'ZITADEL_PROJECT_ID', 'ZITADEL_CLIENT_ID'] as const) {
      if (!e[name]) problems.push(`${name}: required when ZITADEL_URL is set`);
    }
    if (!e.ZITADEL_PAT && !e.ZITADEL_KEY_FILE) {
      problems.push('ZITADEL_PAT: set it or ZITADEL_KEY_FILE when ZITADEL_URL is set');
    }
  }
  if (!e.ZITADEL_INTROSPECTION_CLIENT_ID !== !e.ZITADEL_INTROSPECTION_CLIENT_SECRET) {
    problems.push(
      'ZITADEL_INTROSPECTION_CLIENT_SECRET: set both it and ZITADEL_INTROSPECTION_CLIENT_ID, or neither',
    );
  }
  if (production && !e.SESSION_SIGNING_KEY && !e.SESSION_SIGNING_KEY_FILE) {
    problems.push('SESSION_SIGNING_KEY: required in production (or SESSION_SIGNING_KEY_FILE)');
  }
  if (problems.length) throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  return {
    nodeEnv: e.NODE_ENV,
    http: {
      host: e.HOST,
      port: e.PORT,
      bodyLimitBytes: e.BODY_LIMIT_BYTES,
      jsonBodyLimitBytes: Math.min(e.JSON_BODY_LIMIT_BYTES, e.BODY_LIMIT_BYTES),
      trustProxy: trustProxy as TrustProxy,
    },
    log: { level: e.LOG_LEVEL },
    database: {
      url: e.DATABASE_URL,
      dataDir: e.DATA_DIR,
      migrationsRun: e.DB_MIGRATIONS_RUN ?? true,
      poolMax: e.DB_POOL_MAX,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: e.DB_CONNECT_TIMEOUT_MS,
      cache: {
        enabled: e.CACHE_ENABLED ?? true,
        maxAgeMs: e.CACHE_MAX_AGE_MS,
        maxEntries: e.CACHE_MAX_ENTRIES,
        listenUrl: e.CACHE_LISTEN_DATABASE_URL,
      },
    },
    // Metrics describe traffic and internals: open by default only outside production.
    metrics: { public: e.METRICS_PUBLIC ?? !production, token: e.METRICS_TOKEN },
    zitadel: {
      url: e.ZITADEL_URL,
      devIdpDatabaseUrl: e.DEV_IDP_DATABASE_URL,
      orgId: e.ZITADEL_ORG_ID,
      projectId: e.ZITADEL_PROJECT_ID,
      clientId: e.ZITADEL_CLIENT_ID ?? 'users-api',
      clientSecret: e.ZITADEL_CLIENT_SECRET,
      redirectUri: e.ZITADEL_REDIRECT_URI ?? `http://localhost:${e.PORT}/api/users/login/callback`,
      postLogoutRedirectUri: e.ZITADEL_POST_LOGOUT_REDIRECT_URI,
      pat: e.ZITADEL_PAT,
      keyFile: e.ZITADEL_KEY_FILE,
      timeoutMs: e.ZITADEL_TIMEOUT_MS,
      retries: e.ZITADEL_RETRIES,
      introspection:
        e.ZITADEL_INTROSPECTION_CLIENT_ID && e.ZITADEL_INTROSPECTION_CLIENT_SECRET
          ? {
              clientId: e.ZITADEL_INTROSPECTION_CLIENT_ID,
              clientSecret: e.ZITADEL_INTROSPECTION_CLIENT_SECRET,
            }
          : undefined,
      introspectionCacheSeconds: e.ZITADEL_INTROSPECTION_CACHE_SECONDS,
    },
    auth: {
      adminEmail: e.ADMIN_EMAIL,
      adminPassword: e.ADMIN_PASSWORD,
      adminPasswordReset: e.ADMIN_PASSWORD_RESET ?? false,
      registrationEnabled: e.REGISTRATION_ENABLED ?? false,
      signingKey: e.SESSION_SIGNING_KEY,
      signingKeyFile: e.SESSION_SIGNING_KEY_FILE,
      issuer: e.SESSION_ISSUER,
      audience: e.SESSION_AUDIENCE,
      sessionTtlSeconds: e.SESSION_TTL_SECONDS,
      rememberMeTtlSeconds: e.SESSION_REMEMBER_ME_TTL_SECONDS,
      loginFailureMinMs: e.LOGIN_FAILURE_MIN_MS,
      loginRedirectUrl: e.LOGIN_REDIRECT_URL,
      rolePermissions,
    },
    users: {
      suspensionCheckIntervalMs: e.SUSPENSION_CHECK_INTERVAL_MS,
      searchCountLimit: e.USER_SEARCH_COUNT_LIMIT,
      cursorSigningKey: e.CURSOR_SIGNING_KEY,
    },
    redis: { url: e.REDIS_URL, keyPrefix: e.REDIS_KEY_PREFIX, timeoutMs: e.REDIS_TIMEOUT_MS },
    rateLimits: {
      login: e.RATE_LIMIT_LOGIN,
      loginFailures: e.RATE_LIMIT_LOGIN_FAILURES,
      register: e.RATE_LIMIT_REGISTER,
      userList: e.RATE_LIMIT_USER_LIST,
      userUpdate: e.RATE_LIMIT_USER_UPDATE,
      default: e.RATE_LIMIT_DEFAULT,
    },
    zitadelSync: {
      webhookSigningKey: e.ZITADEL_WEBHOOK_SIGNING_KEY,
      reconcileIntervalSeconds: e.ZITADEL_RECONCILE_INTERVAL_SECONDS,
      reconcilePageSize: e.ZITADEL_RECONCILE_PAGE_SIZE,
      reconcilePageDelayMs: e.ZITADEL_RECONCILE_PAGE_DELAY_MS,
    },
  };
}
