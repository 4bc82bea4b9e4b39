import type { MigrationInterface, QueryRunner } from 'typeorm';

/** users, user_settings and sessions as in the contract's schema, plus what the API needs around them. */

export class InitialSchema1795541909458 implements MigrationInterface {
  name = 'InitialSchema1795541909458';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS pg_trgm`);
    await queryRunner.query(
      `CREATE TABLE "users" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "zitadel_id" text NOT NULL, "username" text NOT NULL, "email" text NOT NULL, "display_name" text, "avatar_url" text, "status" character varying(32) NOT NULL DEFAULT 'active', "roles" text array NOT NULL DEFAULT '{user}', "last_login" TIMESTAMP WITH TIME ZONE, "suspension_reason" text, "suspended_at" TIMESTAMP WITH TIME ZONE, "suspended_until" TIMESTAMP WITH TIME ZONE, "deleted_at" TIMESTAMP WITH TIME ZONE, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "version" integer NOT NULL DEFAULT '1', CONSTRAINT "users_status_check" CHECK ("status" IN ('active', 'suspended', 'inactive', 'pending_verification', 'deleted')), CONSTRAINT "PK_a3ffb1c0c8416b9fc6f907b7433" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE UNIQUE INDEX "users_zitadel_id_key" ON "users"  ("zitadel_id") `);
    await queryRunner.query(`CREATE INDEX "users_created_idx" ON "users"  ("created_at", "id") `);
    await queryRunner.query(
      `CREATE INDEX "users_status_created_idx" ON "users"  ("status", "created_at", "id") `,
    );
    // Case-insensitive uniqueness among users that still exist (a deleted user frees the address).
    await queryRunner.query(
      `CREATE UNIQUE INDEX "users_email_lower_key" ON "users" (lower("email")) WHERE "deleted_at" IS NULL`,
    );
    await queryRunner.query(
      `CREATE UNIQUE INDEX "users_username_lower_key" ON "users" (lower("username")) WHERE "deleted_at" IS NULL`,
    );
    // Substring search on username, display name and email; queries must use this exact expression.
    await queryRunner.query(
      `CREATE INDEX "users_search_trgm_idx" ON "users" USING gin ((lower("username") || ' ' || lower("email") || ' ' || lower(coalesce("display_name", ''))) gin_trgm_ops)`,
    );
    await queryRunner.query(`CREATE INDEX "users_roles_idx" ON "users" USING gin ("roles")`);
    await queryRunner.query(
      `CREATE TABLE "sessions" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "bot_id" text, "status" character varying(16) NOT NULL DEFAULT 'active', "device_info" text, "ip_address" inet, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "last_activity" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL, "terminated_at" TIMESTAMP WITH TIME ZONE, CONSTRAINT "sessions_status_check" CHECK ("status" IN ('active', 'terminated', 'expired')), CONSTRAINT "PK_3238ef96f18b355b671619111bc" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(`CREATE INDEX "sessions_user_status_idx" ON "sessions"  ("user_id", "status") `);
    await queryRunner.query(
      `CREATE TABLE "user_settings" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "user_id" uuid NOT NULL, "setting_key" character varying(64) NOT NULL, "setting_value" text, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "user_settings_user_key_key" UNIQUE ("user_id", "setting_key"), CONSTRAINT "PK_00f004f5922a0744d174530d639" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
    await queryRunner.query(
      `ALTER TABLE "user_settings" ADD CONSTRAINT "user_settings_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "user_settings" DROP CONSTRAINT "user_settings_user_id_fkey"`);
    await queryRunner.query(`ALTER TABLE "sessions" DROP CONSTRAINT "sessions_user_id_fkey"`);
    await queryRunner.query(`DROP TABLE "user_settings"`);
    await queryRunner.query(`DROP INDEX "public"."sessions_user_status_idx"`);
    await queryRunner.query(`DROP TABLE "sessions"`);
    await queryRunner.query(`DROP INDEX "public"."users_roles_idx"`);
    await queryRunner.query(`DROP INDEX "public"."users_search_trgm_idx"`);
    await queryRunner.query(`DROP INDEX "public"."users_username_lower_key"`);
    await queryRunner.query(`DROP INDEX "public"."users_email_lower_key"`);
    await queryRunner.query(`DROP INDEX "public"."users_status_created_idx"`);
    await queryRunner.query(`DROP INDEX "public"."users_created_idx"`);
    await queryRunner.query(`DROP INDEX "public"."users_zitadel_id_key"`);
    await queryRunner.query(`DROP TABLE "users"`);
  }
}
