import { Module, type DynamicModule, type Type } from '@nestjs/common';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import type { AppConfig } from './config/app-config.js';
import { AuditModule } from './audit/audit.module.js';
import { AuthModule } from './auth/auth.module.js';
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
  static forRoot(config: AppConfig, extraModules: Type[] = []): DynamicModule {
    const pretty = config.nodeEnv !== 'production' && process.stdout.isTTY;
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        LoggerModule.forRoot({
          pinoHttp: {
            level: config.log.level,
            // Fastify assigned the id (echoed or generated) before any middleware runs; log under the same one.
            genReqId: (request: IncomingMessage) => (request as IncomingMessage & { id: string }).id,
            customAttributeKeys: { reqId: 'request_id' },
            redact: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]'],
            autoLogging: { ignore: (request) => /^\/(health|metrics)/.test(request.url ?? '') },
            transport: pretty ? { target: 'pino-pretty', options: { singleLine: true } } : undefined,
          },
        }),
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
        ZitadelSyncModule,
        // After AuthModule: its access guard must identify the caller before per-user limits count.
        RateLimitModule,
        ...extraModules,
      ],
    };
  }
}
