import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The last applied Zitadel event per aggregate, so replayed and out-of-order webhooks change nothing. */
export class ZitadelEventCursors1795630000000 implements MigrationInterface {
  name = 'ZitadelEventCursors1795630000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(
      `CREATE TABLE "zitadel_event_cursors" ("aggregate_type" character varying(32) NOT NULL, "aggregate_id" text NOT NULL, "sequence" bigint NOT NULL, "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(), CONSTRAINT "zitadel_event_cursors_pkey" PRIMARY KEY ("aggregate_type", "aggregate_id"))`,
    );
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "zitadel_event_cursors"`);
  }
}
