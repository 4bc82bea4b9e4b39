import { rm } from 'node:fs/promises';
import { withServer } from './global-setup.js';

export default async function globalTeardown() {
  const names = JSON.parse(process.env.TEST_DATABASE_NAMES ?? '[]');
  await withServer(async (client) => {
    for (const name of names) await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
  const embedded = globalThis.usersApiTestPostgres;
  if (embedded) {
    await embedded.embedded.stop();
    await rm(embedded.directory, { recursive: true, force: true });
  }
}
