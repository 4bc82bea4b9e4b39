import { withServer } from './global-setup.js';

export default async function globalTeardown() {
  const name = process.env.TEST_DATABASE_NAME;
  if (name) await withServer((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
}
