import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { DataSource, QueryFailedError } from 'typeorm';
import { dataSourceOptions } from '../src/database/data-source-options.js';
import { runMigrationsLocked } from '../src/database/run-migrations.js';
import { MIGRATIONS } from '../src/database/migrations/index.js';
import { isolatedDatabase } from './support/test-app.js';
import { seedUsers } from '../bench/seed.js';
import {
  FEW_MATCHES,
  parametersOf,
  userListStatements,
  type UserListShape,
  type UserListValues,
} from '../src/users/user-list.sql.js';
import { USER_SORTS } from '../src/users/dto/list-users.dto.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function* planNodes(node: PlanNode): Generator<PlanNode> {
  yield node;
  for (const child of node.Plans ?? []) yield* planNodes(child);
}

/** A list without filters, sorted by creation, with `flags` set. */
const listShape = (flags: Partial<UserListShape>): UserListShape => ({
  status: false,
  org: false,
  bot: false,
  role: false,
  search: false,
  cursor: false,
  sort: 'created_at',
  ...flags,
});

/** Every combination of list filters (and each sort), inside one organization or across all. */
function* listShapes({ org }: { org: boolean }): Generator<UserListShape> {
  const flags = [false, true];
  for (const status of flags)
    for (const bot of flags)
      for (const role of flags)
        for (const search of flags)
          for (const cursor of flags)
            for (const sort of USER_SORTS) yield { status, org, bot, role, search, cursor, sort };
}

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

  /** The benchmark's seed (bench/seed.ts) in a database of its own: plans as a real directory gets them. */
  describe('list statements on 12,000 seeded users', () => {
    let database: Awaited<ReturnType<typeof isolatedDatabase>>;
    let client: pg.Client;
    beforeAll(async () => {
      database = await isolatedDatabase('list-plans');
      const migrated = await open(database.url);
      await runMigrationsLocked(migrated);
      await migrated.destroy();
      client = new pg.Client({ connectionString: database.url });
      await client.connect();
      // More holders of `user` than FEW_MATCHES, so that both ways of reading a role across organizations run.
      await seedUsers(client, 12_000);
    }, 120_000);
    afterAll(async () => {
      await client?.end();
      await database?.drop();
    });

    it('reaches users only through organization-led indexes in the generic plan of every list inside one organization', async () => {
      // Lists inside one organization are prepared statements (user-list.sql.ts): after five executions on a
      // connection PostgreSQL may keep a generic plan, made without the values. Such a plan must not lean on
      // an index whose selectivity depends on the value (the roles GIN index: `user` is held by nearly every
      // user, a custom role by few), or one organization's page would read the whole table. With the bench's
      // seed, a role filter written `roles @> ARRAY[$n]` took that index in 9 of the shapes.
      await client.query('SET plan_cache_mode = force_generic_plan');
      try {
        const {
          rows: [{ org_id: orgId }],
        } = await client.query<{ org_id: string }>(`SELECT org_id FROM users LIMIT 1`);
        const values: UserListValues = {
          orgId,
          status: 'active',
          role: 'user',
          pattern: '%ann%',
          term: 'ann',
          botId: randomUUID(),
          afterValue: '2020-01-01',
          afterId: randomUUID(),
          offset: 0,
          limit: 51,
          countLimit: 1001,
        };
        const reads: string[] = [];
        let prepared = 0;
        for (const shape of listShapes({ org: true })) {
          const sql = userListStatements(shape);
          expect(sql.name).toBeDefined();
          const name = `generic_${prepared++}`;
          await client.query(`PREPARE ${name} AS ${sql.page}`);
          const literals = parametersOf(sql.parameters, {
            ...values,
            afterValue: shape.sort.includes('created_at') ? values.afterValue : 'm',
          })
            .map((value) => (typeof value === 'number' ? String(value) : client.escapeLiteral(String(value))))
            .join(', ');
          const {
            rows: [{ 'QUERY PLAN': plan }],
          } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
            `EXPLAIN (FORMAT JSON) EXECUTE ${name}(${literals})`,
          );
          for (const node of planNodes(plan[0].Plan)) {
            if (
              node['Relation Name'] === 'users' ||
              node['Index Name']?.startsWith('users_') ||
              node['Index Name']?.startsWith('PK_')
            ) {
              reads.push(`${JSON.stringify(shape)} ${node['Node Type']} ${node['Index Name'] ?? ''}`);
            }
          }
        }
        const offPath = reads.filter(
          (read) =>
            !/ (Bitmap Index Scan|Index Scan|Index Scan Backward|Index Only Scan) users_org_\w+$|Bitmap Heap Scan $|Index Scan PK_\w+$/.test(
              read,
            ),
        );
        expect(offPath).toEqual([]);
        // And the lists across organizations stay planned for their values on every call.
        for (const shape of listShapes({ org: false }))
          expect(userListStatements(shape).name).toBeUndefined();
      } finally {
        await client.query('RESET plan_cache_mode');
      }
    });

    it('pages as a plain ORDER BY would, by the ordered scan or through the index', async () => {
      // The largest organization: more than countLimit users there match `user1`.
      const {
        rows: [{ org_id: orgId }],
      } = await client.query<{ org_id: string }>(
        `SELECT org_id FROM users GROUP BY 1 ORDER BY count(*) DESC LIMIT 1`,
      );
      const cases: [Partial<UserListShape>, Partial<UserListValues>][] = [
        [{ role: true }, { role: 'user' }], // more than FEW_MATCHES holders: the ordered scan
        [{ role: true }, { role: 'admin' }], // few: through the roles index
        [
          { role: true, sort: '-email' },
          { role: 'manager', offset: 40 },
        ],
        [
          { role: true, status: true },
          { role: 'admin', status: 'active' },
        ],
        [{ search: true }, { pattern: '%user1%' }], // counted past its limit: the ordered scan
        [{ search: true, sort: 'username' }, { pattern: '%joanna%' }], // fewer: through the trigram index
        [
          { search: true, sort: '-username' },
          { pattern: '%joanna%', offset: 3 },
        ],
        [{ org: true, search: true }, { pattern: '%user1%' }], // inside one organization too
        [{ org: true, search: true, sort: '-email' }, { pattern: '%o%' }],
        [{ role: true }, { role: 'auditor' }], // nobody
        [{ status: true }, { status: 'suspended', offset: 100_000 }], // past the end
      ];
      const branches = new Set<string>();
      for (const [flags, given] of cases) {
        const shape = listShape(flags);
        const values: UserListValues = {
          offset: 0,
          limit: 21,
          countLimit: 1001,
          term: given.pattern?.slice(1, -1),
          orgId: flags.org ? orgId : undefined,
          ...given,
        };
        const sql = userListStatements(shape);
        const { rows } = await client.query<{ id: string | null; total: number }>(
          sql.page,
          parametersOf(sql.parameters, values),
        );
        // Which way it read, as the statement decides it from the total.
        const total = rows[0].total;
        const throughIndex = shape.search
          ? total < values.countLimit
          : shape.role && !shape.status && total <= FEW_MATCHES;
        branches.add(`${throughIndex ? 'index' : 'ordered'} ${shape.search ? 'search' : 'role'}`);
        const column = shape.sort.replace('-', '');
        const direction = shape.sort.startsWith('-') ? 'DESC' : 'ASC';
        const { rows: expected } = await client.query<{ id: string }>(
          `SELECT id FROM users WHERE status <> 'deleted'
             AND ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR roles @> ARRAY[$2])
             AND ($3::text IS NULL OR search_text LIKE $3) AND ($6::text IS NULL OR org_id = $6)
           ORDER BY ${column} ${direction}, id ${direction} OFFSET $4 LIMIT $5`,
          [
            values.status ?? null,
            values.role ?? null,
            values.pattern ?? null,
            values.offset,
            values.limit,
            values.orgId ?? null,
          ],
        );
        expect({ shape, ids: rows.filter((row) => row.id !== null).map((row) => row.id) }).toEqual({
          shape,
          ids: expected.map((row) => row.id),
        });
      }
      expect([...branches].sort()).toEqual(['index role', 'index search', 'ordered role', 'ordered search']);
    });

    it('reads no users for a page that cannot hold one: a role nobody holds, an offset past the end', async () => {
      for (const [flags, given] of [
        [{ role: true }, { role: 'auditor' }],
        [
          { role: true, status: true, sort: 'username' },
          { role: 'auditor', status: 'active' },
        ],
        [{ status: true }, { status: 'suspended', offset: 10_000 }],
      ] as [Partial<UserListShape>, Partial<UserListValues>][]) {
        const shape = listShape(flags);
        const sql = userListStatements(shape);
        const literals = parametersOf(sql.parameters, { offset: 0, limit: 21, countLimit: 1001, ...given })
          .map((value) => (typeof value === 'number' ? String(value) : client.escapeLiteral(String(value))))
          .join(', ');
        await client.query(`PREPARE empty_${Object.keys(flags).join('_')} AS ${sql.page}`);
        const {
          rows: [{ 'QUERY PLAN': plan }],
        } = await client.query<{ 'QUERY PLAN': [{ Plan: PlanNode & { 'Actual Loops'?: number } }] }>(
          `EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE empty_${Object.keys(flags).join('_')}(${literals})`,
        );
        const scansOfUsers = [...planNodes(plan[0].Plan)].filter((node) => node['Relation Name'] === 'users');
        expect(scansOfUsers.length).toBeGreaterThan(0);
        expect({
          flags,
          executed: scansOfUsers.filter((node) => (node as { 'Actual Loops'?: number })['Actual Loops'] !== 0)
            .length,
        }).toEqual({ flags, executed: 0 });
      }
    });
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
