import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Change notifications for the in-process caches (change-feed/): every statement that changes what a
 * cached session or user row holds sends `NOTIFY users_api_changes, '<table>:<id>,<id>,…'` from its own
 * transaction, so the notice reaches every listening instance exactly when the change commits, whichever
 * code made it (this API, the Zitadel webhook, reconciliation, a job, or an operator's SQL). More than
 * 100 rows in one statement send `<table>:*` (flush), which keeps the payload far below PostgreSQL's
 * 8,000-byte limit. Statement-level triggers with transition tables: one notice per statement, not per row.
 *
 * sessions: only a change of status, expiry or owner, or a deletion (the activity timestamp, written at
 * most once a minute per session, is not cached). users: any change of a stored column except the write
 * lease (a marker of a write in progress) and the generated search text.
 */
export class ChangeNotifications1795660000000 implements MigrationInterface {
  name = 'ChangeNotifications1795660000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    const notify = (table: string, ids: string) => `
      DECLARE changed text[];
      BEGIN
        SELECT array_agg(id) INTO changed FROM (${ids} LIMIT 101) AS c;
        IF changed IS NOT NULL THEN
          PERFORM pg_notify('users_api_changes', '${table}:' ||
            CASE WHEN cardinality(changed) > 100 THEN '*' ELSE array_to_string(changed, ',') END);
        END IF;
        RETURN NULL;
      END`;
    await queryRunner.query(`
      CREATE FUNCTION sessions_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      ${notify('sessions', 'SELECT o.id::text AS id FROM old_rows o')} $$`);
    await queryRunner.query(`
      CREATE FUNCTION sessions_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
      ${notify(
        'sessions',
        `SELECT o.id::text AS id FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE o.status IS DISTINCT FROM n.status OR o.expires_at IS DISTINCT FROM n.expires_at
            OR o.user_id IS DISTINCT FROM n.user_id`,
      )} $$`);
    await queryRunner.query(`
      CREATE FUNCTION users_notify_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      ${notify('users', 'SELECT o.id::text AS id FROM old_rows o')} $$`);
    await queryRunner.query(`
      CREATE FUNCTION users_notify_update() RETURNS trigger LANGUAGE plpgsql AS $$
      ${notify(
        'users',
        `SELECT o.id::text AS id FROM old_rows o JOIN new_rows n ON n.id = o.id
         WHERE to_jsonb(o) - 'write_lease_until' - 'search_text'
               IS DISTINCT FROM to_jsonb(n) - 'write_lease_until' - 'search_text'`,
      )} $$`);
    for (const table of ['sessions', 'users']) {
      await queryRunner.query(`CREATE TRIGGER "${table}_notify_delete" AFTER DELETE ON "${table}"
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ${table}_notify_delete()`);
      await queryRunner.query(`CREATE TRIGGER "${table}_notify_update" AFTER UPDATE ON "${table}"
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION ${table}_notify_update()`);
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    for (const table of ['sessions', 'users']) {
      await queryRunner.query(`DROP TRIGGER "${table}_notify_update" ON "${table}"`);
      await queryRunner.query(`DROP TRIGGER "${table}_notify_delete" ON "${table}"`);
      await queryRunner.query(`DROP FUNCTION ${table}_notify_update()`);
      await queryRunner.query(`DROP FUNCTION ${table}_notify_delete()`);
    }
  }
}
