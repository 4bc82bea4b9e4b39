/** The PostgreSQL server the tests use; `.ci/run` makes sure one answers here. */
export const SERVER_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export const TEST_DATABASE_PREFIX = 'users_api_test_';

export function databaseUrl(name) {
  const url = new URL(SERVER_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

export function uniqueDatabaseName(purpose = '') {
  return `${TEST_DATABASE_PREFIX}${purpose}_${Date.now()}_${process.pid}_${Math.floor(Math.random() * 1e6)}`;
}
