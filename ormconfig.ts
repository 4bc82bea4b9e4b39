/**
 * The DataSource the TypeORM CLI uses (`npm run migration:generate|run|revert`). It points at
 * DATABASE_URL; the CLI runs against the compiled file in dist/, so no TypeScript loader is involved.
 */
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from './src/database/data-source-options.js';

const url = process.env.DATABASE_URL;
if (!url) {
  throw new Error(
    'DATABASE_URL must be set for the TypeORM CLI (e.g. postgres://postgres@127.0.0.1:5432/users)',
  );
}

export default new DataSource(
  dataSourceOptions({
    url,
    poolMax: 2,
    statementTimeoutMs: 0,
    migrationsRun: false,
    applicationName: 'typeorm-cli',
  }),
);
