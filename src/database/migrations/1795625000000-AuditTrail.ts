import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The audit trail of admin writes, indexes for sorting the user list by username and email, and one
 * for looking up addresses of deleted users.
 */

export class AuditTrail1795625000000 implements MigrationInterface {
  name = 'AuditTrail1795625000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "audit_events" ("id" uuid NOT NULL DEFAULT gen_random_uuid(), "actor_user_id" uuid, "actor_zitadel_id" text NOT NULL, "target_user_id" uuid NOT NULL, "action" character varying(64) NOT NULL, "reason" text, "changes" jsonb NOT NULL DEFAULT '{}', "request_id" text, "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "PK_910f64d901a5c3e9878f0d4a407" PRIMARY KEY ("id"))`,
    );
    await queryRunner.query(
      `CREATE INDEX "audit_events_target_created_idx" ON "audit_events"  ("target_user_id", "created_at", "id") `,
    );
    await queryRunner.query(`CREATE INDEX "users_email_idx" ON "users"  ("email", "id") `);
    await queryRunner.query(`CREATE INDEX "users_username_idx" ON "users"  ("username", "id") `);
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "public"."users_username_idx"`);
    await queryRunner.query(`DROP INDEX "public"."users_email_idx"`);
    await queryRunner.query(`DROP INDEX "public"."audit_events_target_created_idx"`);
    await queryRunner.query(`DROP TABLE "audit_events"`);
  }
}
