import { Inject, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { runMigrationsLocked } from './run-migrations.js';

export const EMBEDDED_POSTGRES = Symbol('EMBEDDED_POSTGRES');

/** Starts the embedded server only when no DATABASE_URL is configured; otherwise provides null. */
@Module({
  providers: [
    {
      provide: EMBEDDED_POSTGRES,
      inject: [ConfigService],
      useFactory: async (config: ConfigService<AppConfig, true>) => {
        const database = config.get('database', { infer: true });
        if (database.url) return null;
        const embedded = new EmbeddedPostgres(database.dataDir, database.poolMax);
        await embedded.start();
        return embedded;
      },
    },
  ],
  exports: [EMBEDDED_POSTGRES],
})
class EmbeddedPostgresModule {}

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [EmbeddedPostgresModule],
      inject: [ConfigService, EMBEDDED_POSTGRES],
      // Fail fast at boot: an orchestrator restarts us, and a clear error beats minutes of silent retries.
      useFactory: (config: ConfigService<AppConfig, true>, embedded: EmbeddedPostgres | null) => {
        const database = config.get('database', { infer: true });
        return {
          ...dataSourceOptions({
            url: database.url ?? embedded!.connectionUrl,
            poolMax: database.poolMax,
            statementTimeoutMs: database.statementTimeoutMs,
            migrationsRun: false,
          }),
          retryAttempts: 1,
          retryDelay: 1_000,
        };
      },
    }),
    EmbeddedPostgresModule,
  ],
})
export class DatabaseModule implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger('Database');

  constructor(
    private readonly dataSource: DataSource,
    private readonly config: ConfigService<AppConfig, true>,
    @Inject(EMBEDDED_POSTGRES) private readonly embedded: EmbeddedPostgres | null,
  ) {}

  async onModuleInit(): Promise<void> {
    if (!this.config.get('database', { infer: true }).migrationsRun) return;
    const applied = await runMigrationsLocked(this.dataSource);
    if (applied.length) this.logger.log(`Applied migrations: ${applied.join(', ')}`);
  }

  /** Close the pool before the embedded server, whatever order Nest calls modules in, so nothing is lost. */
  async onApplicationShutdown(): Promise<void> {
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.embedded?.stop();
  }
}
