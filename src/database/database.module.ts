import { Inject, Logger, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { EMBEDDED_DATABASES, EmbeddedPostgres } from './embedded-postgres.js';
import { runMigrationsLocked } from './run-migrations.js';

export const EMBEDDED_POSTGRES = Symbol('EMBEDDED_POSTGRES');
/** The URL the service actually connects to: DATABASE_URL, or the embedded server's. */
export const DATABASE_CONNECTION_URL = Symbol('DATABASE_CONNECTION_URL');

/** Starts the embedded server only when no DATABASE_URL is configured; otherwise provides null. */
@Module({
  providers: [
    {
      provide: EMBEDDED_POSTGRES,
      inject: [ConfigService],
      useFactory: async (config: ConfigService<AppConfig, true>) => {
        const database = config.get('database', { infer: true });
        if (database.url) return null;
        const embedded = new EmbeddedPostgres(database.dataDir, new Logger('EmbeddedPostgres'));
        // The identity provider's database too, unless it is a real Zitadel with its own.
        const zitadel = config.get('zitadel', { infer: true });
        await embedded.start(
          zitadel.url || zitadel.devIdpDatabaseUrl
            ? [EMBEDDED_DATABASES.service]
            : [EMBEDDED_DATABASES.service, EMBEDDED_DATABASES.identityProvider],
        );
        return embedded;
      },
    },
    {
      provide: DATABASE_CONNECTION_URL,
      inject: [ConfigService, EMBEDDED_POSTGRES],
      useFactory: (config: ConfigService<AppConfig, true>, embedded: EmbeddedPostgres | null) =>
        config.get('database', { infer: true }).url ?? embedded!.server.urlFor(EMBEDDED_DATABASES.service),
    },
  ],
  exports: [EMBEDDED_POSTGRES, DATABASE_CONNECTION_URL],
})
class EmbeddedPostgresModule {}

@Module({
  imports: [
    TypeOrmModule.forRootAsync({
      imports: [EmbeddedPostgresModule],
      inject: [ConfigService, DATABASE_CONNECTION_URL],
      // Fail fast at boot: an orchestrator restarts us, and a clear error beats minutes of silent retries.
      useFactory: (config: ConfigService<AppConfig, true>, url: string) => {
        const database = config.get('database', { infer: true });
        return {
          ...dataSourceOptions({
            url,
            poolMax: database.poolMax,
            statementTimeoutMs: database.statementTimeoutMs,
            connectTimeoutMs: database.connectTimeoutMs,
            migrationsRun: false,
          }),
          retryAttempts: 1,
          retryDelay: 1_000,
        };
      },
    }),
    EmbeddedPostgresModule,
  ],
  exports: [EmbeddedPostgresModule],
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
    if (this.dataSource.isInitialized) {
      await this.dataSource.destroy();
      this.logger.log('Connection pool closed');
    }
    await this.embedded?.stop();
  }
}
