import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Login methods on sessions (OIDC logout needs the ID token hint) and single-use OIDC login states. */

export class LoginSessions1795542567647 implements MigrationInterface {
  name = 'LoginSessions1795542567647';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "oidc_login_states" ("state" character varying(64) NOT NULL, "code_verifier" character varying(128) NOT NULL, "nonce" character varying(64) NOT NULL, "remember_me" boolean NOT NULL DEFAULT false, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, CONSTRAINT "PK_24b02183724bb950788655cda3a" PRIMARY KEY ("state"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "oidc_login_states_expires_idx" ON "oidc_login_states"  ("expires_at") `,
    );
    await queryRunner.query(
      `ALTER TABLE "sessions" ADD "auth_method" character varying(16) NOT NULL DEFAULT 'password'`,
    );
    await queryRunner.query(`ALTER TABLE "sessions" ADD "id_token" text`);
    await queryRunner.query(
      `ALTER TABLE "sessions" ADD CONSTRAINT "sessions_auth_method_check" CHECK ("auth_method" IN ('password', 'oidc'))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "sessions" DROP CONSTRAINT "sessions_auth_method_check"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "id_token"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP COLUMN "auth_method"`);
    await queryRunner.query(`DROP INDEX "public"."oidc_login_states_expires_idx"`);
    await queryRunner.query(`DROP TABLE "oidc_login_states"`);
  }
}
