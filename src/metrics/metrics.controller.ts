import { timingSafeEqual } from 'node:crypto';
import { Controller, Get, Header, Req } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { AppConfig } from '../config/app-config.js';
import { ApiError } from '../common/errors/api-error.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { SkipRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { MetricsService } from './metrics.service.js';

@ApiTags('health')
@Controller('metrics')
@SkipRateLimit()
export class MetricsController {
  private readonly settings: AppConfig['metrics'];

  constructor(
    private readonly metricsService: MetricsService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.settings = config.get('metrics', { infer: true });
  }

  /** Open when METRICS_PUBLIC (the default outside production); otherwise only with METRICS_TOKEN. */
  @Get()
  @Endpoint({
    summary: 'Prometheus metrics',
    description: 'Public outside production; in production requires `Authorization: Bearer <METRICS_TOKEN>`.',
    access: 'public',
    errors: [401, 404],
  })
  @ApiOkResponse({
    description: 'Prometheus text exposition format',
    content: { 'text/plain': { schema: { type: 'string' } } },
  })
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  async metrics(@Req() request: FastifyRequest): Promise<string> {
    const authorization = request.headers.authorization;
    if (!this.settings.public) {
      if (!this.settings.token) throw new ApiError('not_found', 'Metrics are not exposed');
      if (!this.tokenMatches(authorization, this.settings.token))
        throw ApiError.unauthorized('Metrics token required');
    }
    return this.metricsService.registry.metrics();
  }

  private tokenMatches(header: string | undefined, token: string): boolean {
    const given = Buffer.from(header?.replace(/^Bearer /i, '') ?? '');
    const expected = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
