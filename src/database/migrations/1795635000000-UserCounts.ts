import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Exact list totals without counting rows. `user_counts` holds the number of users per status and role
 * (role `*`: any role), kept by statement-level triggers in the same transaction as every change to
 * `users`, so it is exact at any snapshot. `GET /api/users` without `search` reads its total here: O(1)
 * instead of a count over up to millions of rows. Statement-level triggers with transition tables keep a
 * bulk insert to one counter update per (status, role), not one per row.
 */
export class UserCounts1795635000000 implements MigrationInterface {
  name = 'UserCounts1795635000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "user_counts" (
        "status" character varying(32) NOT NULL,
        "role" text NOT NULL,
        "n" bigint NOT NULL DEFAULT 0,
        CONSTRAINT "user_counts_pkey" PRIMARY KEY ("status", "role")
      )`);
    // Each function adds the statement's net change per (status, role) in one upsert, in key order so
    // that concurrent statements take the counter rows' locks in the same order (no deadlocks).
    const upsert = (deltas: string) => `
        INSERT INTO user_counts (status, role, n)
        SELECT status, role, sum(delta) FROM (${deltas}) AS d
        GROUP BY status, role HAVING sum(delta) <> 0 ORDER BY status, role
        ON CONFLICT (status, role) DO UPDATE SET n = user_counts.n + EXCLUDED.n;`;
    const rowsOf = (table: string, delta: number, where = '') =>
      `SELECT x.status, r.role, ${delta} AS delta FROM ${table} CROSS JOIN LATERAL unnest(array_append(x.roles, '*')) AS r(role) ${where}`;
    // Only rows whose status or roles changed move between counters.
    const changed = 'WHERE o.status IS DISTINCT FROM n.status OR o.roles IS DISTINCT FROM n.roles';
    await queryRunner.query(`
      CREATE FUNCTION user_counts_on_insert() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN ${upsert(rowsOf('new_rows x', 1))} RETURN NULL; END $$`);
    await queryRunner.query(`
      CREATE FUNCTION user_counts_on_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN ${upsert(rowsOf('old_rows x', -1))} RETURN NULL; END $$`);
    await queryRunner.query(`
      CREATE FUNCTION user_counts_on_update() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN ${upsert(
        `${rowsOf('old_rows o JOIN new_rows n ON n.id = o.id, LATERAL (SELECT o.*) x', -1, changed)}
         UNION ALL
         ${rowsOf('old_rows o JOIN new_rows n ON n.id = o.id, LATERAL (SELECT n.*) x', 1, changed)}`,
      )} RETURN NULL; END $$`);
    await queryRunner.query(`CREATE TRIGGER "users_counts_insert" AFTER INSERT ON "users"
      REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_counts_on_insert()`);
    await queryRunner.query(`CREATE TRIGGER "users_counts_delete" AFTER DELETE ON "users"
      REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION user_counts_on_delete()`);
    await queryRunner.query(`CREATE TRIGGER "users_counts_update" AFTER UPDATE ON "users"
      REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION user_counts_on_update()`);
    await queryRunner.query(`
      INSERT INTO user_counts (status, role, n)
      SELECT u.status, r.role, count(*) FROM users u
      CROSS JOIN LATERAL unnest(array_append(u.roles, '*')) AS r(role)
      GROUP BY u.status, r.role`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "users_counts_update" ON "users"`);
    await queryRunner.query(`DROP TRIGGER "users_counts_delete" ON "users"`);
    await queryRunner.query(`DROP TRIGGER "users_counts_insert" ON "users"`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_update()`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_delete()`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_insert()`);
    await queryRunner.query(`DROP TABLE "user_counts"`);
  }
}
