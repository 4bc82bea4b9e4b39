import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { LoggerModule } from 'nestjs-pino';
import type { Logger } from 'pino';
import type { AppConfig } from './config/app-config.js';
import { AuditModule } from './audit/audit.module.js';
import { AccountModule } from './account/account.module.js';
import { AuthModule } from './auth/auth.module.js';
import { loggerParams } from './common/http/access-log.js';
import { AppConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RateLimitModule } from './common/rate-limit/rate-limit.module.js';
import { RedisModule } from './redis/redis.module.js';
import { SessionsModule } from './sessions/sessions.module.js';
import { SettingsModule } from './settings/settings.module.js';
import { AvatarsModule } from './users/avatars/avatars.module.js';
import { UsersModule } from './users/users.module.js';
import { ZitadelModule } from './zitadel/zitadel.module.js';
import { ZitadelSyncModule } from './zitadel-sync/zitadel-sync.module.js';

@Module({})
export class AppModule {
  /** `logger`: the application's pino logger (createRootLogger), shared with the access log. */
  static forRoot(config: AppConfig, logger: Logger, extraModules: Type[] = []): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        LoggerModule.forRoot(loggerParams(logger)),
        // The periodic jobs (suspension expiry, reconciliation with Zitadel) are named in its registry.
        ScheduleModule.forRoot(),
        DatabaseModule,
        RedisModule,
        HealthModule,
        MetricsModule,
        ZitadelModule,
        AuditModule,
        UsersModule,
        SessionsModule,
        SettingsModule,
        AvatarsModule,
        AuthModule,
        AccountModule,
        ZitadelSyncModule,
        // After AuthModule: its access guard must identify the caller before per-user limits count.
        RateLimitModule,
        ...extraModules,
      ],
    };
  }
}
