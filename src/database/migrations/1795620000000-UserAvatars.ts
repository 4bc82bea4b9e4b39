import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Uploaded avatars: one row per user, the bytes in PostgreSQL, gone with the user. */

export class UserAvatars1795620000000 implements MigrationInterface {
  name = 'UserAvatars1795620000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "user_avatars" ("user_id" uuid NOT NULL, "content_type" character varying(32) NOT NULL, "bytes" bytea NOT NULL, "sha256" character varying(64) NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "user_avatars_content_type_check" CHECK ("content_type" IN ('image/png', 'image/jpeg', 'image/webp')), CONSTRAINT "user_avatars_pkey" PRIMARY KEY ("user_id"))`,
    );
    await queryRunner.query(
      `ALTER TABLE "user_avatars" ADD CONSTRAINT "user_avatars_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE NO ACTION`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "user_avatars" DROP CONSTRAINT "user_avatars_user_id_fkey"`);
    await queryRunner.query(`DROP TABLE "user_avatars"`);
  }
}
