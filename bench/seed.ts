import cliProgress from 'cli-progress';
import type pg from 'pg';

/**
 * Seeded rows are recognisable by this zitadel_id prefix, so a rerun can count and replace them. The
 * version changes whenever what the seed writes changes, so a database seeded by an older version is
 * reseeded instead of reused.
 */
export const SEED_PREFIX = 'bench-v3-';
/** Seeded users belong to this many organizations, ids BENCH_ORG_BASE + 1 … + BENCH_ORGS (issue 19). */
export const BENCH_ORGS = 1_000;
const BENCH_ORG_BASE = 900_000_000_000_000_000n;
/** Every version's rows: all of them go before a reseed. */
export const ANY_SEED_PREFIX = 'bench-';

const FIRST_NAMES = [
  'Anna',
  'Joanna',
  'Hannah',
  'Danny',
  'John',
  'Maria',
  'Pedro',
  'Lucas',
  'Sofia',
  'Mateo',
  'Emma',
  'Liam',
  'Olivia',
  'Noah',
  'Ava',
  'Ethan',
  'Mia',
  'Yuki',
  'Chen',
  'Fatima',
  'Omar',
  'Ivan',
  'Zoe',
  'Kofi',
];
const LAST_NAMES = [
  'Silva',
  'Santos',
  'Smith',
  'Johnson',
  'Brown',
  'Garcia',
  'Miller',
  'Davis',
  'Martin',
  'Lopez',
  'Wilson',
  'Anderson',
  'Thomas',
  'Moore',
  'Jackson',
  'White',
  'Harris',
  'Clark',
  'Lewis',
  'Walker',
  'Young',
  'King',
];

/**
 * Seeds `total` users with multi-row INSERT … SELECT over generate_series, in batches (each its own
 * statement, so the progress bar moves and no transaction grows huge). Names, statuses and roles are
 * spread the way a real organisation's would be: mostly active users, some managers, few admins. The
 * users are spread over BENCH_ORGS organizations (a platform hosting many customers), also by md5(i).
 * Names, status and roles are picked by bytes of md5(i), not by i modulo something: creation time
 * already follows i, and picking by i modulo would tie them to it (the oldest users would all share
 * three first names), which no real directory does and which skews every query ordered by date.
 */
export async function seedUsers(
  client: pg.Client,
  total: number,
  from = 1,
  batchSize = 25_000,
): Promise<void> {
  const bar = new cliProgress.SingleBar(
    { format: 'seeding users [{bar}] {value}/{total} ({eta}s left)', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, from - 1);
  for (let start = from; start <= total; start += batchSize) {
    const end = Math.min(total, start + batchSize - 1);
    await client.query(
      `INSERT INTO users (zitadel_id, org_id, username, email, display_name, status, roles, created_at, last_login)
       SELECT $3 || i,
              ($6::numeric + 1 + (get_byte(b, 0) * 256 + get_byte(b, 1)) % $7)::text,
              'user' || i || '_' || substr(h, 1, 6),
              'user' || i || '_' || substr(h, 1, 6) || '@example.com',
              ($4::text[])[1 + get_byte(b, 8) % cardinality($4::text[])] || ' ' ||
                ($5::text[])[1 + get_byte(b, 9) % cardinality($5::text[])],
              CASE WHEN get_byte(b, 10) % 20 = 3 THEN 'suspended' WHEN get_byte(b, 11) % 33 = 5 THEN 'inactive'
                   WHEN get_byte(b, 12) % 50 = 7 THEN 'pending_verification' ELSE 'active' END,
              CASE WHEN get_byte(b, 13) % 100 = 0 THEN ARRAY['admin']
                   WHEN get_byte(b, 14) % 7 = 0 THEN ARRAY['manager', 'user'] ELSE ARRAY['user'] END,
              now() - (i % 1000) * interval '1 day' - (i % 86400) * interval '1 second',
              now() - (i % 30) * interval '1 day'
       FROM generate_series($1::int, $2::int) AS i,
            LATERAL (SELECT md5(i::text) AS h, decode(md5(i::text), 'hex') AS b) AS hashed`,
      [start, end, SEED_PREFIX, FIRST_NAMES, LAST_NAMES, BENCH_ORG_BASE.toString(), BENCH_ORGS],
    );
    bar.update(end);
  }
  bar.stop();
  // A freshly loaded table has an empty visibility map and no hint bits: without a vacuum the first
  // minutes of any benchmark would measure autovacuum's backlog instead of the service.
  await client.query('VACUUM ANALYZE users');
  // The counters took one update per batch and organization: clear their dead versions too.
  await client.query('VACUUM ANALYZE user_counts');
}
