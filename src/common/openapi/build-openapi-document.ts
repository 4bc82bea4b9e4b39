import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { AppModule } from '../../app.module.js';
import { parseAppConfig } from '../../config/app-config.js';
import { createRootLogger } from '../http/access-log.js';
import { createOpenApiDocument } from './openapi.js';

/**
 * The OpenAPI document without starting anything: Nest's preview mode resolves the module graph but
 * instantiates no provider, so no database is needed to describe the API.
 */
export async function buildOpenApiDocument(): Promise<OpenAPIObject> {
  const config = parseAppConfig({
    NODE_ENV: 'test',
    DATABASE_URL: 'postgres://unused/none',
    LOG_LEVEL: 'silent',
  });
  const logger = createRootLogger(config);
  const app = await NestFactory.create(AppModule.forRoot(config, logger), new FastifyAdapter(), {
    preview: true,
    logger: false,
    abortOnError: false,
  });
  try {
    return await createOpenApiDocument(app);
  } finally {
    await app.close();
  }
}
