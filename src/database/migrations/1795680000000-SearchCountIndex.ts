import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A search counts its matches inside one organization up to USER_SEARCH_COUNT_LIMIT (users/user-list.sql.ts).
 * Through the trigram index that count fetches every match's row from the heap, and the trigram's posting
 * list spans every organization: at 10,000,000 users, `ann` in an organization of 10,000 cost 11 ms. This
 * btree holds what the count reads (organization, search_text, status), so it is an index-only scan of
 * that organization's entries that stops at the limit: 1.3 ms (docs/proof.md). On a large table the build
 * blocks writes to `users` (about 45 s for 10,000,000 rows here); an operator may create the same index
 * beforehand with CREATE INDEX CONCURRENTLY under this name, which this migration then keeps.
 */
export class SearchCountIndex1795680000000 implements MigrationInterface {
  name = 'SearchCountIndex1795680000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE INDEX IF NOT EXISTS "users_org_search_text_count_idx" ON "users" (org_id, search_text) INCLUDE (status)`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "users_org_search_text_count_idx"`);
  }
}
