import type { DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

export interface DatabaseConnection {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
  migrationsRun: boolean;
  applicationName?: string;
}

/** The one definition of how we talk to PostgreSQL, shared by the app, ormconfig.ts and the tests. */
export function dataSourceOptions(connection: DatabaseConnection): DataSourceOptions {
  return {
    type: 'postgres',
    url: connection.url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsRun: connection.migrationsRun,
    migrationsTableName: 'typeorm_migrations',
    // Each migration in its own transaction, so a failed one leaves the earlier ones applied and itself undone.
    migrationsTransactionMode: 'each',
    synchronize: false,
    // gen_random_uuid() is built into PostgreSQL 13+, so no uuid-ossp extension is needed.
    uuidExtension: 'pgcrypto',
    applicationName: connection.applicationName ?? 'users-api',
    extra: {
      max: connection.poolMax,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // Bounded queries: a stuck statement fails the request instead of holding a pooled connection.
      statement_timeout: connection.statementTimeoutMs || undefined,
    },
  };
}
