import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource, QueryFailedError } from 'typeorm';
import { dataSourceOptions } from '../src/database/data-source-options.js';
import { runMigrationsLocked } from '../src/database/run-migrations.js';
import { MIGRATIONS } from '../src/database/migrations/index.js';
import { isolatedDatabase } from './support/test-app.js';

function open(url: string): Promise<DataSource> {
  return new DataSource(
    dataSourceOptions({ url, poolMax: 2, statementTimeoutMs: 0, migrationsRun: false }),
  ).initialize();
}

describe('schema and migrations', () => {
  let dataSource: DataSource;
  beforeAll(async () => {
    dataSource = await open(process.env.TEST_DATABASE_URL!);
  });
  afterAll(() => dataSource.destroy());

  it('has no drift: the entities describe exactly what the migrations built', async () => {
    // What `migration:generate` would write against the migrated database.
    const pending = await dataSource.driver.createSchemaBuilder().log();
    expect(pending.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('has applied every listed migration', async () => {
    const rows = await dataSource.query<{ name: string }[]>(
      'SELECT name FROM typeorm_migrations ORDER BY id',
    );
    expect(rows.map((r) => r.name)).toEqual(MIGRATIONS.map((m) => m.name));
  });

  it('keeps email and username unique regardless of case, among users that are not deleted', async () => {
    const insert = (zitadelId: string, username: string, email: string) =>
      dataSource.query<{ id: string }[]>(
        `INSERT INTO users (zitadel_id, org_id, username, email) VALUES ($1, '1', $2, $3) RETURNING id`,
        [zitadelId, username, email],
      );
    const suffix = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
    const [first] = await insert(`z1${suffix}`, `Alice${suffix}`, `Alice${suffix}@Example.com`);
    await expect(insert(`z2${suffix}`, `other${suffix}`, `alice${suffix}@example.COM`)).rejects.toThrow(
      QueryFailedError,
    );
    await expect(insert(`z3${suffix}`, `ALICE${suffix}`, `other${suffix}@example.com`)).rejects.toThrow(
      QueryFailedError,
    );
    await dataSource.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = $1`, [
      first.id,
    ]);
    await expect(insert(`z4${suffix}`, `alice${suffix}`, `alice${suffix}@example.com`)).resolves.toHaveLength(
      1,
    );
  });

  it('rejects an unknown status', async () => {
    await expect(
      dataSource.query(
        `INSERT INTO users (zitadel_id, org_id, username, email, status) VALUES ('zx', '1', 'ux', 'ex', 'weird')`,
      ),
    ).rejects.toThrow(/users_status_check/);
  });

  it('answers list and search with indexes', async () => {
    await dataSource.query('SET enable_seqscan = off');
    const plan = async (sql: string) =>
      JSON.stringify(await dataSource.query(`EXPLAIN (FORMAT JSON) ${sql}`)).includes('Index');
    expect(await plan(`SELECT id FROM users WHERE search_text LIKE '%ali%'`)).toBe(true);
    expect(await plan(`SELECT id FROM users WHERE roles @> ARRAY['admin']`)).toBe(true);
    expect(await plan(`SELECT id FROM users WHERE status = 'active' ORDER BY created_at, id LIMIT 50`)).toBe(
      true,
    );
    expect(
      await plan(`SELECT id FROM sessions WHERE user_id = gen_random_uuid() AND status = 'active'`),
    ).toBe(true);
    // Inside one organization, each sort order by an index that leads with org_id. Sorting is disabled for
    // this check: on a table this small PostgreSQL 15 rightly prefers (org_id, status, …) plus a sort, and
    // the question here is whether an index serves the order, which only matters on large organizations.
    await dataSource.query('SET enable_sort = off');
    const uses = async (index: string, sql: string) =>
      JSON.stringify(await dataSource.query(`EXPLAIN (FORMAT JSON) ${sql}`)).includes(`"${index}"`);
    for (const [index, order] of [
      ['users_org_created_idx', 'created_at DESC, id DESC'],
      ['users_org_username_idx', 'username, id'],
      ['users_org_email_idx', 'email, id'],
    ]) {
      expect({
        order,
        indexed: await uses(
          index,
          `SELECT id FROM users WHERE org_id = '7' AND status <> 'deleted' ORDER BY ${order} LIMIT 50`,
        ),
      }).toEqual({ order, indexed: true });
    }
    await dataSource.query('RESET enable_sort');
    // A search's count (user-list.sql.ts) can read one organization's entries without the heap. Index-only
    // scans are costed by the share of all-visible pages, which a test table just written has few of (on
    // PostgreSQL 15 the planner then took a plain index scan): a vacuum sets them, as autovacuum does.
    await dataSource.query('VACUUM users');
    await dataSource.query('SET enable_bitmapscan = off');
    const count = JSON.stringify(
      await dataSource.query(
        `EXPLAIN (FORMAT JSON) SELECT count(*) FROM (SELECT 1 FROM users u WHERE u.status <> 'deleted'
         AND u.org_id = '7' AND u.search_text LIKE '%ann%' LIMIT 1001) AS matches`,
      ),
    );
    expect(count).toContain('"Index Only Scan"');
    expect(count).toContain('"users_org_search_text_count_idx"');
    await dataSource.query('RESET enable_bitmapscan');
    await dataSource.query('RESET enable_seqscan');
  });

  it('migrates down to nothing and up again on a fresh database', async () => {
    const database = await isolatedDatabase('updown');
    const fresh = await open(database.url);
    try {
      await runMigrationsLocked(fresh);
      for (let i = 0; i < MIGRATIONS.length; i++) await fresh.undoLastMigration({ transaction: 'each' });
      // TypeORM's own bookkeeping tables stay, typeorm_metadata emptied of what the migrations put in it.
      const tables = await fresh.query<{ tablename: string }[]>(
        `SELECT tablename FROM pg_tables WHERE schemaname = 'public'
           AND tablename NOT IN ('typeorm_migrations', 'typeorm_metadata')`,
      );
      expect(tables).toEqual([]);
      expect(await fresh.query(`SELECT * FROM typeorm_metadata`)).toEqual([]);
      expect(await runMigrationsLocked(fresh)).toEqual(MIGRATIONS.map((m) => m.name));
      expect((await fresh.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
    } finally {
      await fresh.destroy();
      await database.drop();
    }
  });

  it('applies migrations once when instances start together', async () => {
    const database = await isolatedDatabase('race');
    const instances = await Promise.all([open(database.url), open(database.url), open(database.url)]);
    try {
      const applied = await Promise.all(instances.map((ds) => runMigrationsLocked(ds)));
      expect(applied.flat()).toEqual(MIGRATIONS.map((m) => m.name));
    } finally {
      await Promise.all(instances.map((ds) => ds.destroy()));
      await database.drop();
    }
  });
});
