import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiProperty, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';

class HealthDto {
  @ApiProperty({ enum: ['ok', 'error', 'shutting_down'], example: 'ok' })
  status!: string;

  @ApiProperty({
    type: 'object',
    additionalProperties: true,
    description: 'Per dependency: {status: "up" | "down", ...}',
    example: { database: { status: 'up' } },
  })
  details!: Record<string, unknown>;
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
  ) {}

  /** Liveness: the process serves HTTP. Deliberately checks nothing else, so a database outage never restarts us. */
  @Get('live')
  @Endpoint({ summary: 'Liveness probe', access: 'public' })
  @ApiOkResponse({ type: HealthDto, description: 'Healthy' })
  @HealthCheck({ swaggerDocumentation: false })
  liveness() {
    return this.health.check([]);
  }

  /** Readiness: dependencies answer; a load balancer should route here only while this is 200. */
  @Get('ready')
  @Endpoint({ summary: 'Readiness probe (checks the database)', access: 'public' })
  @ApiOkResponse({ type: HealthDto, description: 'Healthy' })
  @HealthCheck({ swaggerDocumentation: false })
  readiness() {
    return this.health.check([() => this.database.pingCheck('database', { timeout: 2_000 })]);
  }
}
