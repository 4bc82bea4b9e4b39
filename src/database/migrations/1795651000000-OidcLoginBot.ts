import type { MigrationInterface, QueryRunner } from 'typeorm';

/** A browser login started for a bot carries its bot_id through the OIDC state to the session it opens. */
export class OidcLoginBot1795651000000 implements MigrationInterface {
  name = 'OidcLoginBot1795651000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "oidc_login_states" ADD "bot_id" character varying(64)`);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "oidc_login_states" DROP COLUMN "bot_id"`);
  }
}
