// Plain ESM: jest loads global setup outside its module system, so this uses the build that
// `npm test` makes first (dist/), i.e. exactly the migrations production runs.
import 'reflect-metadata';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../dist/src/database/data-source-options.js';
import { EmbeddedPostgres } from '../../dist/src/database/embedded-postgres.js';
import { runMigrationsLocked } from '../../dist/src/database/run-migrations.js';
import { TEST_DATABASE_PREFIX, databaseUrl, serverUrl, uniqueDatabaseName } from './test-database-names.js';

/**
 * The server: DATABASE_URL when set; otherwise a real PostgreSQL of our own (the embedded one `npm start`
 * uses) in a temporary directory, stopped and removed by global-teardown. On it, one fresh database per
 * test run for the service, migrated once here through the real migrations (never synchronize), and one
 * for the development identity provider. Their URLs reach the workers as TEST_DATABASE_URL and
 * TEST_IDP_DATABASE_URL; global-teardown drops them.
 */
export default async function globalSetup() {
  if (!process.env.DATABASE_URL) await startEmbeddedServer();
  const name = uniqueDatabaseName();
  const idpName = uniqueDatabaseName('idp');
  await withServer(async (client) => {
    await dropStaleDatabases(client);
    await client.query(`CREATE DATABASE "${name}"`);
    await client.query(`CREATE DATABASE "${idpName}"`);
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
  process.env.TEST_DATABASE_NAMES = JSON.stringify([name, idpName]);
  process.env.TEST_DATABASE_URL = url;
  process.env.TEST_IDP_DATABASE_URL = databaseUrl(idpName);
}

async function startEmbeddedServer() {
  const directory = await mkdtemp(join(tmpdir(), 'users-api-test-postgres-'));
  const quiet = { log: () => undefined, warn: (message) => console.warn(message) };
  const embedded = new EmbeddedPostgres(directory, quiet);
  const started = Date.now();
  const server = await embedded.start([]);
  console.log(
    `\nNo DATABASE_URL: the tests run on an embedded PostgreSQL ${server.version} ` +
      `(127.0.0.1:${server.port}, started in ${Date.now() - started} ms, in ${directory})`,
  );
  process.env.TEST_SERVER_URL = server.urlFor('postgres');
  // Read by global-teardown, which jest runs in this same process.
  globalThis.usersApiTestPostgres = { embedded, directory };
}

export async function withServer(run) {
  const client = new pg.Client({ connectionString: serverUrl(), connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(
      `The tests need the PostgreSQL server at ${new URL(serverUrl()).host} (DATABASE_URL): it does not answer`,
      { cause: error },
    );
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
