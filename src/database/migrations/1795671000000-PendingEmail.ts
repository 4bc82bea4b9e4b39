import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An email change waits for its verification code in `pending_email`; the confirmed address stays in
 * `email` (and keeps working for logins) until then. Unique among pending changes, case-insensitively, so
 * two users cannot both wait for the same address.
 */
export class PendingEmail1795671000000 implements MigrationInterface {
  name = 'PendingEmail1795671000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "users" ADD "pending_email" text`);
    await queryRunner.query(
      `CREATE UNIQUE INDEX "users_pending_email_lower_key" ON "users" (lower(pending_email))
       WHERE pending_email IS NOT NULL AND deleted_at IS NULL`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "users_pending_email_lower_key"`);
    await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "pending_email"`);
  }
}
