import { z } from 'zod';

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

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(3000, 0, 65535),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BODY_LIMIT_BYTES: int(1_048_576, 1024, 50 * 1_048_576),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  DATA_DIR: z.string().min(1).default('./data'),
  DB_MIGRATIONS_RUN: flag,
  DB_POOL_MAX: int(10, 1, 200),
  DB_STATEMENT_TIMEOUT_MS: int(10_000, 0, 600_000),
  METRICS_PUBLIC: flag,
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
});

export type Environment = Record<string, string | undefined>;

export interface AppConfig {
  nodeEnv: 'development' | 'test' | 'production';
  http: { host: string; port: number; bodyLimitBytes: number };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  database: {
    /** Unset means: run the embedded PGlite server under dataDir. */
    url: string | undefined;
    dataDir: string;
    migrationsRun: boolean;
    poolMax: number;
    statementTimeoutMs: number;
  };
  metrics: { public: boolean; token: string | undefined };
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
  return {
    nodeEnv: e.NODE_ENV,
    http: { host: e.HOST, port: e.PORT, bodyLimitBytes: e.BODY_LIMIT_BYTES },
    log: { level: e.LOG_LEVEL },
    database: {
      url: e.DATABASE_URL,
      dataDir: e.DATA_DIR,
      migrationsRun: e.DB_MIGRATIONS_RUN ?? true,
      poolMax: e.DB_POOL_MAX,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
    },
    // Metrics describe traffic and internals: open by default only outside production.
    metrics: { public: e.METRICS_PUBLIC ?? e.NODE_ENV !== 'production', token: e.METRICS_TOKEN },
  };
}
