import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { signedInUser, uniqueName, type SignedInUser } from './support/identity.js';
import { isolatedDatabase, startTestApp, type TestApp } from './support/test-app.js';
import { expectProblem } from './support/problem.js';

const STATUSES = ['active', 'suspended', 'inactive', 'pending_verification'] as const;
const SORTS = ['created_at', '-created_at', 'username', '-username', 'email', '-email'] as const;
const ROLE_SETS = [['user'], ['manager', 'user'], ['admin']];

interface Seeded {
  id: string;
  username: string;
  email: string;
  display_name: string;
  status: string;
  roles: string[];
  created_at: string;
}

/**
 * List and search against a seeded set, in a database of this spec's own: the seeded rows have no
 * Zitadel account, so a reconciliation pass of another spec file on the shared database would mark them
 * deleted mid-test. Every query still carries a search term unique to this run.
 */
describe('GET /api/users: filters, search, sorting and pagination', () => {
  let t: TestApp;
  let admin: SignedInUser;
  const tag = uniqueName('list').replace(/[^a-z0-9]/g, '');
  let seeded: Seeded[];
  /** The admin's organization: an organization admin lists only its users. */
  let orgId: string;

  let database: Awaited<ReturnType<typeof isolatedDatabase>>;

  beforeAll(async () => {
    database = await isolatedDatabase('list');
    t = await startTestApp({ DATABASE_URL: database.url, DB_MIGRATIONS_RUN: 'true' });
    admin = await signedInUser(t, { roles: ['admin'] });
    [{ org_id: orgId }] = await t.app
      .get(DataSource)
      .query<{ org_id: string }[]>('SELECT org_id FROM users WHERE id = $1', [admin.userId]);
    // 30 users: statuses, role sets and search fields spread across them; deleted ones must never show.
    // created_at repeats in threes, so ties are broken by id. Lower-case alphanumerics keep the expected
    // order the same under any collation.
    const rows = Array.from({ length: 30 }, (_, i) => {
      const n = String(i).padStart(2, '0');
      return {
        username: `${tag}u${String.fromCharCode(97 + ((i * 7) % 26))}${n}`,
        email: `${i % 3 === 0 ? `${tag}em` : 'mail'}${n}x@${tag}.example`,
        display_name: i % 4 === 0 ? `Person ${tag}dn ${n}` : `Person ${n}`,
        status: i % 6 === 5 ? 'deleted' : STATUSES[i % 4],
        // A role only this run's rows hold, so totals without a search can be checked too.
        roles: i % 2 === 0 ? [...ROLE_SETS[i % 3], `r${tag}`] : ROLE_SETS[i % 3],
        created_at: new Date(Date.UTC(2020, 0, 1, 0, Math.floor(i / 3))).toISOString(),
      };
    });
    seeded = await t.app.get(DataSource).query<Seeded[]>(
      `INSERT INTO users (zitadel_id, org_id, username, email, display_name, status, roles, created_at, deleted_at)
       SELECT 'seed-' || gen_random_uuid(), $2, r.username, r.email, r.display_name, r.status, r.roles, r.created_at,
              CASE WHEN r.status = 'deleted' THEN now() END
       FROM jsonb_to_recordset($1::jsonb)
         AS r(username text, email text, display_name text, status text, roles text[], created_at timestamptz)
       RETURNING id, username, email, display_name, status, roles,
                 to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created_at`,
      [JSON.stringify(rows), orgId],
    );
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  const list = (query: Record<string, string | number | undefined>) => {
    const search = new URLSearchParams(
      Object.entries(query)
        .filter((e): e is [string, string | number] => e[1] !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    );
    return t.http({
      method: 'GET',
      url: `/api/users?${search.toString()}`,
      headers: { authorization: `Bearer ${admin.token}` },
    });
  };

  function expected(
    filter: { status?: string; role?: string; search?: string },
    sort = 'created_at',
  ): Seeded[] {
    const needle = (filter.search ?? '').toLowerCase();
    const key = sort.replace(/^-/, '') as 'created_at' | 'username' | 'email';
    const sign = sort.startsWith('-') ? -1 : 1;
    return seeded
      .filter((u) => u.status !== 'deleted')
      .filter((u) => !filter.status || u.status === filter.status)
      .filter((u) => !filter.role || u.roles.includes(filter.role))
      .filter((u) => `${u.username} ${u.email} ${u.display_name}`.toLowerCase().includes(needle))
      .sort((a, b) => sign * (a[key] < b[key] ? -1 : a[key] > b[key] ? 1 : a.id < b.id ? -1 : 1));
  }

  it('answers every combination of status, role and search with exactly the matching users', async () => {
    const searches = [tag, `${tag}DN`.toUpperCase(), `${tag}em`, `Person ${tag}`.toUpperCase()];
    for (const status of [undefined, ...STATUSES]) {
      for (const role of [undefined, 'user', 'manager', 'admin']) {
        for (const search of searches) {
          const res = await list({ status, role, search, limit: 100 });
          const want = expected({ status, role, search });
          const body = res.json<{
            users: { user_id: string }[];
            total: number;
            next_cursor: string | null;
          }>();
          expect({
            status,
            role,
            search,
            code: res.statusCode,
            total: body.total,
            ids: body.users.map((u) => u.user_id),
          }).toEqual({
            status,
            role,
            search,
            code: 200,
            total: want.length,
            ids: want.map((u) => u.id),
          });
          expect(body.next_cursor).toBeNull();
        }
      }
    }
  });

  it('gives exact totals without a search too (kept by triggers, not counted per request)', async () => {
    const role = `r${tag}`;
    for (const status of [undefined, ...STATUSES]) {
      const res = await list({ status, role, limit: 100 });
      const want = expected({ status, role });
      const body = res.json<{ users: { user_id: string }[]; total: number }>();
      expect({ status, total: body.total, ids: body.users.map((u) => u.user_id) }).toEqual({
        status,
        total: want.length,
        ids: want.map((u) => u.id),
      });
    }
  });

  it('keeps the per-status-and-role counters equal to the rows through inserts, updates and deletes', async () => {
    const db = t.app.get(DataSource);
    const role = `c${tag}`;
    const inserted = await db.query<{ id: string }[]>(
      `INSERT INTO users (zitadel_id, org_id, username, email, status, roles)
       SELECT 'seed-' || gen_random_uuid(), $3, $1 || i, $1 || i || '@example.test',
              (ARRAY['active', 'suspended', 'inactive'])[1 + i % 3], ARRAY[$2, 'user']
       FROM generate_series(1, 9) AS i RETURNING id`,
      [`${tag}cnt`, role, orgId],
    );
    const ids = inserted.map((r) => r.id);
    await db.query(`UPDATE users SET status = 'suspended' WHERE id = ANY($1)`, [ids.slice(0, 3)]);
    // Moved to another organization: counted there, no longer in the admin's.
    await db.query(`UPDATE users SET org_id = '9' || $2 WHERE id = $1`, [ids[7], orgId]);
    await db.query(`UPDATE users SET roles = ARRAY['manager'] WHERE id = ANY($1)`, [ids.slice(3, 5)]);
    await db.query(`UPDATE users SET last_login = now() WHERE id = ANY($1)`, [ids]);
    await db.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = $1`, [ids[5]]);
    await db.query(`DELETE FROM users WHERE id = $1`, [ids[6]]);
    // One statement, one snapshot: counters and rows must agree for every status and role, '*' included.
    const [{ mismatches }] = await db.query<{ mismatches: unknown[] | null }[]>(
      `SELECT json_agg(x) AS mismatches FROM (
         SELECT coalesce(c.org_id, r.org_id) AS org_id, coalesce(c.status, r.status) AS status,
                coalesce(c.role, r.role) AS role, c.n AS counted, r.n AS actual
         FROM user_counts c
         FULL JOIN (SELECT u.org_id, u.status, x.role, count(*) AS n FROM users u
                    CROSS JOIN LATERAL unnest(array_append(u.roles, '*')) AS x(role)
                    GROUP BY u.org_id, u.status, x.role) r
           ON r.org_id = c.org_id AND r.status = c.status AND r.role = c.role
         WHERE coalesce(c.n, 0) <> coalesce(r.n, 0)) x`,
    );
    expect(mismatches).toBeNull();
    const res = await list({ role, status: 'suspended' });
    expect(res.json()).toMatchObject({ total: 3 });
    // The one inactive row left holding the role moved to another organization: not counted here.
    expect((await list({ role, status: 'inactive' })).json()).toMatchObject({ total: 0 });
    expect((await list({ role })).json()).toMatchObject({ total: 4 });
    await db.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = ANY($1)`, [ids]);
  });

  it('returns the contract fields for each user', async () => {
    const res = await list({ search: tag, limit: 1 });
    const first = expected({ search: tag })[0];
    expect(res.json()).toEqual({
      users: [
        {
          user_id: first.id,
          username: first.username,
          email: first.email,
          display_name: first.display_name,
          status: first.status,
          roles: first.roles,
          created_at: first.created_at,
        },
      ],
      total: expected({ search: tag }).length,
      total_exact: true,
      limit: 1,
      offset: 0,
      next_cursor: expect.any(String),
    });
  });

  it('counts a search only up to USER_SEARCH_COUNT_LIMIT, says so, and still pages through every match', async () => {
    const capped = await startTestApp({ DATABASE_URL: database.url, USER_SEARCH_COUNT_LIMIT: '5' });
    try {
      const get = async (query: string) => {
        const res = await capped.http({
          method: 'GET',
          url: `/api/users?${query}`,
          headers: { authorization: `Bearer ${admin.token}` },
        });
        expect(res.statusCode).toBe(200);
        return res.json<{
          users: { user_id: string }[];
          total: number;
          total_exact: boolean;
          next_cursor: string | null;
        }>();
      };
      const all = expected({ search: tag });
      expect(all.length).toBeGreaterThan(5);
      expect(await get(`search=${tag}&limit=2`)).toMatchObject({ total: 5, total_exact: false });

      const seen: string[] = [];
      let cursor = '';
      for (let page = 0; page < 10; page++) {
        const body = await get(`search=${tag}&limit=10${cursor && `&cursor=${cursor}`}`);
        seen.push(...body.users.map((u) => u.user_id));
        if (!body.next_cursor) break;
        cursor = body.next_cursor;
      }
      expect(seen).toEqual(all.map((u) => u.id));

      // Up to the limit the count is exact; without a search it always is (from user_counts).
      const few = expected({ search: `${tag}em`, status: 'active' });
      expect(few.length).toBeGreaterThan(0);
      expect(few.length).toBeLessThanOrEqual(5);
      expect(await get(`search=${tag}em&status=active`)).toMatchObject({
        total: few.length,
        total_exact: true,
      });
      const roleHolders = expected({ role: `r${tag}` });
      expect(roleHolders.length).toBeGreaterThan(5);
      expect(await get(`role=r${tag}`)).toMatchObject({ total: roleHolders.length, total_exact: true });
    } finally {
      await capped.close();
    }
  });

  it.each(SORTS)(
    'covers every row exactly once, in order, by cursor and by offset (sort=%s)',
    async (sort) => {
      const want = expected({ search: tag }, sort).map((u) => u.id);
      const byCursor: string[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 20; page++) {
        const res = await list({ search: tag, sort, limit: 4, cursor });
        const body = res.json<{ users: { user_id: string }[]; total: number; next_cursor: string | null }>();
        expect(body.total).toBe(want.length);
        byCursor.push(...body.users.map((u) => u.user_id));
        if (!body.next_cursor) break;
        cursor = body.next_cursor;
      }
      expect(byCursor).toEqual(want);

      const byOffset: string[] = [];
      for (let offset = 0; offset < want.length + 4; offset += 4) {
        const res = await list({ search: tag, sort, limit: 4, offset });
        byOffset.push(...res.json<{ users: { user_id: string }[] }>().users.map((u) => u.user_id));
      }
      expect(byOffset).toEqual(want);
    },
  );

  it('keeps a cursor valid while rows before it are added', async () => {
    const first = await list({ search: tag, limit: 3 });
    const cursor = first.json<{ next_cursor: string }>().next_cursor;
    const db = t.app.get(DataSource);
    const [{ id }] = await db.query<{ id: string }[]>(
      `INSERT INTO users (zitadel_id, org_id, username, email, created_at)
       VALUES ('seed-' || gen_random_uuid(), $3, $1, $2, '2019-01-01') RETURNING id`,
      [`${tag}early`, `${tag}early@example.test`, orgId],
    );
    try {
      const rest = await list({ search: tag, limit: 100, cursor });
      expect(rest.json<{ users: { user_id: string }[] }>().users.map((u) => u.user_id)).toEqual(
        expected({ search: tag })
          .slice(3)
          .map((u) => u.id),
      );
      // An offset page, by contrast, shifts: the new row pushes every row one place on.
      const shifted = await list({ search: tag, limit: 1, offset: 3 });
      expect(shifted.json<{ users: { user_id: string }[] }>().users[0].user_id).toBe(
        expected({ search: tag })[2].id,
      );
    } finally {
      await db.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = $1`, [id]);
    }
  });

  it('writes each user exactly as the JSON of its DTO: nulls, escapes, microseconds, content type', async () => {
    // PostgreSQL writes the users' JSON (users/user-list.sql.ts): what a JavaScript serialization of
    // the row would have given, including created_at cut to milliseconds as Date#toISOString does.
    const db = t.app.get(DataSource);
    const odd = `Zoë "quoted" \\ back\u0001slash \u{1F600} </script>`;
    const inserted = await db.query<{ id: string }[]>(
      `INSERT INTO users (zitadel_id, org_id, username, email, display_name, roles, created_at)
       VALUES ('seed-' || gen_random_uuid(), $1, $2, $3, $4, ARRAY['user', 'r"q'], '1999-12-31 23:59:59.999999+00'),
              ('seed-' || gen_random_uuid(), $1, $5, $6, NULL, ARRAY[]::text[], '2021-06-01 12:00:00.0005+02')
       RETURNING id`,
      [orgId, `${tag}json1`, `${tag}json1@example.test`, odd, `${tag}json2`, `${tag}json2@example.test`],
    );
    try {
      const res = await list({ search: `${tag}json`, sort: 'username' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.json()).toEqual({
        users: [
          {
            user_id: inserted[0].id,
            username: `${tag}json1`,
            email: `${tag}json1@example.test`,
            display_name: odd,
            status: 'active',
            roles: ['user', 'r"q'],
            created_at: '1999-12-31T23:59:59.999Z',
          },
          {
            user_id: inserted[1].id,
            username: `${tag}json2`,
            email: `${tag}json2@example.test`,
            display_name: null,
            status: 'active',
            roles: [],
            created_at: new Date('2021-06-01T10:00:00.000Z').toISOString(),
          },
        ],
        total: 2,
        total_exact: true,
        limit: 50,
        offset: 0,
        next_cursor: null,
      });
      // Key order and spacing as JSON.stringify writes them.
      expect(res.body).toBe(JSON.stringify(res.json()));
    } finally {
      await db.query(`UPDATE users SET status = 'deleted', deleted_at = now() WHERE id = ANY($1)`, [
        inserted.map((row) => row.id),
      ]);
    }
  });

  it('treats % and _ in the search as literal characters', async () => {
    expect((await list({ search: `${tag}%` })).json()).toMatchObject({ total: 0, users: [] });
    expect((await list({ search: `${tag}_` })).json()).toMatchObject({ total: 0, users: [] });
  });

  it('serves offsets up to 10,000 and refuses deeper ones with a 422 that points at the cursor', async () => {
    expect((await list({ offset: 10_000, limit: 1 })).statusCode).toBe(200);
    const deep = await list({ offset: 900_000 });
    expectProblem(deep, 422, 'validation_error');
    expect(JSON.stringify(deep.json())).toContain('next_cursor');
  });

  it('refuses bad parameters with 400 (malformed) or 422 (bad value), never clamping', async () => {
    const cases: [Record<string, string | number>, number, string][] = [
      [{ limit: 101 }, 422, 'limit'],
      [{ limit: 0 }, 422, 'limit'],
      [{ limit: 'abc' }, 400, 'limit'],
      [{ offset: -1 }, 422, 'offset'],
      [{ offset: 10_001 }, 422, 'offset'],
      [{ sort: 'password' }, 422, 'sort'],
      [{ status: 'deleted' }, 422, 'status'],
      [{ search: 'x'.repeat(101) }, 422, 'search'],
      [{ role: 'a b' }, 422, 'role'],
      [{ color: 'blue' }, 422, 'color'],
    ];
    for (const [query, status, field] of cases) {
      const res = await list(query);
      expect({ query, status: res.statusCode }).toEqual({ query, status });
      expect(res.json<{ errors: { field: string }[] }>().errors.map((e) => e.field)).toContain(field);
    }
  });

  it('refuses a malformed cursor (400), one from another sort or combined with offset (422)', async () => {
    expect((await list({ cursor: 'bm90IGEgY3Vyc29y' })).statusCode).toBe(400);
    expect((await list({ cursor: '!!!' })).statusCode).toBe(400);
    const cursor = (await list({ search: tag, limit: 2, sort: 'username' })).json<{ next_cursor: string }>()
      .next_cursor;
    expect((await list({ search: tag, cursor })).statusCode).toBe(422);
    expect((await list({ search: tag, sort: 'username', cursor, offset: 2 })).statusCode).toBe(422);
  });
});
