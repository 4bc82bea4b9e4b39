import type { DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities.js';
import { MIGRATIONS } from './migrations/index.js';

export interface DatabaseConnection {
  url: string;
  poolMax: number;
  statementTimeoutMs: number;
  /** Waiting for a connection (pooled or new); default 5 s. */
  connectTimeoutMs?: number;
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
      connectionTimeoutMillis: connection.connectTimeoutMs ?? 5_000,
      idleTimeoutMillis: 30_000,
      // Bounded queries: a stuck statement fails the request instead of holding a pooled connection.
      statement_timeout: connection.statementTimeoutMs || undefined,
      // statement_timeout is enforced by the server, so it cannot end a wait on a network that has gone
      // silent; the driver's own timer (a little longer, so the server's error normally wins) does. The
      // pool then discards that connection.
      query_timeout: connection.statementTimeoutMs ? connection.statementTimeoutMs + 1_000 : undefined,
      // Detects a dead peer on idle pooled connections.
      keepAlive: true,
    },
  };
}
