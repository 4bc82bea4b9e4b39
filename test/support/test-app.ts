import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    // The development session key lands here, not in the repository's ./data.
    DATA_DIR: join(tmpdir(), `users-api-test-${process.pid}`),
    ADMIN_EMAIL: 'admin@users-api.test',
    ADMIN_PASSWORD: 'Admin-Passw0rd!',
    REGISTRATION_ENABLED: 'true',
    // Keeps the equal-time padding of failed logins short in tests; its own test sets it explicitly.
    LOGIN_FAILURE_MIN_MS: '50',
    // Spec files share one database and identity provider: only the sync spec runs reconciliation, by hand.
    ZITADEL_RECONCILE_INTERVAL_SECONDS: '0',
    ...env,
  });
  const app = await createApp(config, extraModules);
  await app.init();
  const fastify = app.getHttpAdapter().getInstance();
  await fastify.ready();
  return { app, http: fastify.inject.bind(fastify), close: () => app.close() };
}
