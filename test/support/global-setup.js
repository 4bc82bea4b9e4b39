// Plain ESM: jest loads global setup outside its module system, so this uses the build that
// `npm test` makes first (dist/), i.e. exactly the migrations production runs.
import 'reflect-metadata';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../dist/src/database/data-source-options.js';
import { runMigrationsLocked } from '../../dist/src/database/run-migrations.js';
import { SERVER_URL, TEST_DATABASE_PREFIX, databaseUrl, uniqueDatabaseName } from './test-database-names.js';

/**
 * One fresh database per test run, migrated once here through the real migrations (never synchronize).
 * Its URL reaches the workers through TEST_DATABASE_URL; global-teardown drops it.
 */
export default async function globalSetup() {
  const name = uniqueDatabaseName();
  await withServer(async (client) => {
    await dropStaleDatabases(client);
    await client.query(`CREATE DATABASE "${name}"`);
  });
  const url = databaseUrl(name);
  const dataSource = new DataSource(
    dataSourceOptions({ url, poolMax: 2, statementTimeoutMs: 0, migrationsRun: false }),
  );
  await dataSource.initialize();
  try {
    await runMigrationsLocked(dataSource);
  } finally {
    await dataSource.destroy();
  }
  process.env.TEST_DATABASE_NAME = name;
  process.env.TEST_DATABASE_URL = url;
}

export async function withServer(run) {
  const client = new pg.Client({ connectionString: SERVER_URL, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`The tests need a PostgreSQL server at ${SERVER_URL} (set DATABASE_URL for another)`, {
      cause: error,
    });
  }
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** Databases left behind by runs killed before their teardown (older than an hour). */
async function dropStaleDatabases(client) {
  const { rows } = await client.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [
    `${TEST_DATABASE_PREFIX}%`,
  ]);
  const cutoff = Date.now() - 3_600_000;
  for (const { datname } of rows) {
    const createdAt = Number(/_(\d{13})_\d+_\d+$/.exec(datname)?.[1]);
    if (createdAt && createdAt < cutoff)
      await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
}
