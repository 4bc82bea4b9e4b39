/**
 * The PostgreSQL server the tests use: DATABASE_URL when set, else the embedded server that global setup
 * started (it publishes its URL as TEST_SERVER_URL to the workers it spawns).
 */
export function serverUrl() {
  const url = process.env.TEST_SERVER_URL ?? process.env.DATABASE_URL;
  if (!url) throw new Error('No test database server: run the tests through jest (global setup)');
  return url;
}

export const TEST_DATABASE_PREFIX = 'users_api_test_';

export function databaseUrl(name) {
  const url = new URL(serverUrl());
  url.pathname = `/${name}`;
  return url.toString();
}

export function uniqueDatabaseName(purpose = '') {
  return `${TEST_DATABASE_PREFIX}${purpose}_${Date.now()}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
}
