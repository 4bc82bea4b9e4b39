import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance } from 'fastify';
import { createApp } from '../../src/app.js';
import { parseAppConfig, type Environment } from '../../src/config/app-config.js';

export interface TestApp {
  app: NestFastifyApplication;
  /** Fastify's in-process injector: real routing, hooks, parsing and serialization, no sockets. */
  http: FastifyInstance['inject'];
  close(): Promise<void>;
}

/** The production application on the run's migrated test database, with quiet logs. */
export async function startTestApp(env: Environment = {}, extraModules: Type[] = []): Promise<TestApp> {
  const config = parseAppConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: process.env.TEST_DATABASE_URL,
    DB_MIGRATIONS_RUN: 'false',
    DB_POOL_MAX: '4',
    ...env,
  });
  const app = await createApp(config, extraModules);
  await app.init();
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.ready();
  return { app, http: fastify.inject.bind(fastify), close: () => app.close() };
}
