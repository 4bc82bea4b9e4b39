import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Organizations (issue 19). Each user records its Zitadel organization (`org_id`, the resource owner);
 * rows cached before this migration get '' here and the configured organization at the next start
 * (UsersService.onApplicationBootstrap), then their true one from reconciliation.
 *
 * Every list and search index leads with `org_id` (the search index is GIN over org_id and the trigrams
 * of search_text, through btree_gin), so a list or search inside one organization reads only that
 * organization's rows; `users_created_idx` stays for instance-wide listings. `user_counts` counts per
 * organization, status and role (same triggers, one more key column). Roles per bot live in
 * `user_bot_roles` (docs/identity.md "Organizations and bot roles").
 */
export class Organizations1795670000000 implements MigrationInterface {
  name = 'Organizations1795670000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "users" ADD "org_id" text NOT NULL DEFAULT ''`);
    await queryRunner.query(`ALTER TABLE "users" ALTER COLUMN "org_id" DROP DEFAULT`);
    await queryRunner.query(`DROP INDEX "users_status_created_idx"`);
    await queryRunner.query(`DROP INDEX "users_username_idx"`);
    await queryRunner.query(`DROP INDEX "users_email_idx"`);
    await queryRunner.query(
      `CREATE INDEX "users_org_status_created_idx" ON "users" ("org_id", "status", "created_at", "id")`,
    );
    await queryRunner.query(`CREATE INDEX "users_org_created_idx" ON "users" ("org_id", "created_at", "id")`);
    await queryRunner.query(`CREATE INDEX "users_org_username_idx" ON "users" ("org_id", "username", "id")`);
    await queryRunner.query(`CREATE INDEX "users_org_email_idx" ON "users" ("org_id", "email", "id")`);
    // Search: one GIN index over (org_id, search_text trigrams). btree_gin lets GIN hold org_id; a search
    // inside one organization then intersects inside the index (GIN's fast scan skips the trigram posting
    // lists by the organization's entries) instead of reading every organization's matches of the term.
    // A search over every organization uses the same index on its second column alone.
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS btree_gin`);
    await queryRunner.query(
      `CREATE INDEX "users_org_search_text_idx" ON "users" USING gin ("org_id", "search_text" gin_trgm_ops)`,
    );
    await queryRunner.query(`DROP INDEX "users_search_text_trgm_idx"`);

    await queryRunner.query(`
      CREATE TABLE "user_bot_roles" (
        "user_id" uuid NOT NULL,
        "bot_id" text NOT NULL,
        "roles" text array NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "user_bot_roles_pkey" PRIMARY KEY ("user_id", "bot_id")
      )`);
    await queryRunner.query(
      `CREATE INDEX "user_bot_roles_bot_idx" ON "user_bot_roles" ("bot_id", "user_id")`,
    );
    await queryRunner.query(
      `ALTER TABLE "user_bot_roles" ADD CONSTRAINT "user_bot_roles_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );

    await this.dropCounts(queryRunner);
    await this.createCounts(queryRunner, true);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await this.dropCounts(queryRunner);
    await this.createCounts(queryRunner, false);
    await queryRunner.query(`DROP TABLE "user_bot_roles"`);
    await queryRunner.query(
      `CREATE INDEX "users_search_text_trgm_idx" ON "users" USING gin ("search_text" gin_trgm_ops)`,
    );
    await queryRunner.query(`DROP INDEX "users_org_search_text_idx"`);
    await queryRunner.query(`DROP INDEX "users_org_email_idx"`);
    await queryRunner.query(`DROP INDEX "users_org_username_idx"`);
    await queryRunner.query(`DROP INDEX "users_org_created_idx"`);
    await queryRunner.query(`DROP INDEX "users_org_status_created_idx"`);
    await queryRunner.query(`CREATE INDEX "users_email_idx" ON "users" ("email", "id")`);
    await queryRunner.query(`CREATE INDEX "users_username_idx" ON "users" ("username", "id")`);
    await queryRunner.query(
      `CREATE INDEX "users_status_created_idx" ON "users" ("status", "created_at", "id")`,
    );
    await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "org_id"`);
  }

  private async dropCounts(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TRIGGER "users_counts_update" ON "users"`);
    await queryRunner.query(`DROP TRIGGER "users_counts_delete" ON "users"`);
    await queryRunner.query(`DROP TRIGGER "users_counts_insert" ON "users"`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_update()`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_delete()`);
    await queryRunner.query(`DROP FUNCTION user_counts_on_insert()`);
    await queryRunner.query(`DROP TABLE "user_counts"`);
  }

  /**
   * `user_counts` and its triggers as the UserCounts migration made them, keyed by organization too when
   * `perOrg` (see that migration for how the statement-level triggers work).
   */
  private async createCounts(queryRunner: QueryRunner, perOrg: boolean): Promise<void> {
    const key = perOrg ? ['org_id', 'status', 'role'] : ['status', 'role'];
    const keyList = key.join(', ');
    const rowKey = (alias: string) => key.map((k) => (k === 'role' ? 'r.role' : `${alias}.${k}`)).join(', ');
    await queryRunner.query(`
      CREATE TABLE "user_counts" (
        ${perOrg ? `"org_id" text NOT NULL,` : ''}
        "status" character varying(32) NOT NULL,
        "role" text NOT NULL,
        "n" bigint NOT NULL DEFAULT 0,
        CONSTRAINT "user_counts_pkey" PRIMARY KEY (${key.map((k) => `"${k}"`).join(', ')})
      )`);
    // An instance-wide total sums one (role, status) over every organization.
    if (perOrg)
      await queryRunner.query(
        `CREATE INDEX "user_counts_role_status_idx" ON "user_counts" ("role", "status")`,
      );
    const upsert = (deltas: string) => `
        INSERT INTO user_counts (${keyList}, n)
        SELECT ${keyList}, sum(delta) FROM (${deltas}) AS d
        GROUP BY ${keyList} HAVING sum(delta) <> 0 ORDER BY ${keyList}
        ON CONFLICT (${keyList}) DO UPDATE SET n = user_counts.n + EXCLUDED.n;`;
    const rowsOf = (table: string, delta: number, where = '') =>
      `SELECT ${rowKey('x')}, ${delta} AS delta FROM ${table} CROSS JOIN LATERAL unnest(array_append(x.roles, '*')) AS r(role) ${where}`;
    const changed =
      'WHERE o.status IS DISTINCT FROM n.status OR o.roles IS DISTINCT FROM n.roles' +
      (perOrg ? ' OR o.org_id IS DISTINCT FROM n.org_id' : '');
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
      INSERT INTO user_counts (${keyList}, n)
      SELECT ${rowKey('u')}, count(*) FROM users u
      CROSS JOIN LATERAL unnest(array_append(u.roles, '*')) AS r(role)
      GROUP BY ${rowKey('u')}`);
  }
}
