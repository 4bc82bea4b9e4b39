import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import {
  HealthCheck,
  HealthCheckService,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
  type HealthIndicatorFunction,
} from '@nestjs/terminus';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { SkipRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { RedisConnection } from '../redis/redis.connection.js';

class HealthDto {
  @ApiProperty({ enum: ['ok', 'degraded', 'error', 'shutting_down'], example: 'ok' })
  status!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Per dependency: {status: "up" | "degraded" | "down", ...}',
    example: { database: { status: 'up' } },
  })
  details!: Record<string, unknown>;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The dependencies that are up (a subset of `details`)',
    example: { database: { status: 'up' } },
  })
  info!: Record<string, unknown>;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'The dependencies that are not up (a subset of `details`)',
    example: {},
  })
  error!: Record<string, unknown>;
}

@ApiTags('health')
@Controller('health')
@SkipRateLimit()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly redis: RedisConnection,
  ) {}

  /** Liveness: the process serves HTTP. Deliberately checks nothing else, so a database outage never restarts us. */
  @Get('live')
  @Endpoint({ summary: 'Liveness probe', access: 'public' })
  @ApiOkResponse({ type: HealthDto, description: 'Healthy' })
  @HealthCheck({ swaggerDocumentation: false })
  liveness() {
    return this.health.check([]);
  }

  /**
   * Readiness: dependencies answer; a load balancer should route here only while this is 200. Redis
   * (when configured) is optional: without it the instance serves with per-instance rate limits, so it
   * reports `degraded` (still 200) rather than taking the instance out of rotation.
   */
  @Get('ready')
  @Endpoint({
    summary: 'Readiness probe (checks the database; Redis, when configured, only degrades)',
    access: 'public',
  })
  @ApiOkResponse({ type: HealthDto, description: 'Healthy' })
  @HealthCheck({ swaggerDocumentation: false })
  readiness() {
    const checks: HealthIndicatorFunction[] = [() => this.database.pingCheck('database', { timeout: 2_000 })];
    if (this.redis.configured) checks.push(() => this.redisCheck());
    return this.health.check(checks);
  }

  private async redisCheck() {
    const indicator = this.indicators.check('redis');
    if (await this.redis.ping()) return indicator.up();
    return indicator.degraded({
      message: 'Redis is unreachable: rate limits are counted per instance until it returns',
    });
  }
}
