import { Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../../config/app-config.js';
import { MetricsModule } from '../../metrics/metrics.module.js';
import { RedisConnection } from '../../redis/redis.connection.js';
import { FailoverThrottlerStorage } from './failover-throttler.storage.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { buildThrottlers } from './rate-limit.policies.js';

/**
 * Rate limits on every route (see rate-limit.policies.ts). Import it after AuthModule: global guards
 * run in the order their modules are registered, and per-user policies need the access guard to have
 * identified the caller first (test/rate-limits.e2e-spec.ts checks that they do).
 */
@Module({
  imports: [
    MetricsModule,
    ThrottlerModule.forRootAsync({
      inject: [ConfigService, RedisConnection],
      useFactory: (config: ConfigService<AppConfig, true>, redis: RedisConnection) => ({
        throttlers: buildThrottlers(config.get('rateLimits', { infer: true })),
        storage: new FailoverThrottlerStorage(redis),
      }),
    }),
  ],
  providers: [{ provide: APP_GUARD, useClass: RateLimitGuard }],
})
export class RateLimitModule {}
