import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * An admin write's lease on a user: set by a short UPDATE before the write calls Zitadel and cleared by the
 * transaction that applies it, so that no connection or row lock is held while Zitadel answers, and a second
 * write to the same user meanwhile gets 409 instead of racing the first. A lease left by a process that died
 * mid-write simply runs out.
 */
export class UserWriteLease1795650000000 implements MigrationInterface {
  name = 'UserWriteLease1795650000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "users" ADD "write_lease_until" TIMESTAMP WITH TIME ZONE`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "users" DROP COLUMN "write_lease_until"`);
  }
}
