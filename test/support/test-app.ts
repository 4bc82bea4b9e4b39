import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import type { DestinationStream } from 'pino';
import { createUsersApiClient, type UsersApiClient } from '../../client/index.js';
import { createApp } from '../../src/app.js';
import { parseAppConfig, type Environment } from '../../src/config/app-config.js';
import pg from 'pg';
import { contractViolations } from './contract.js';
import { injectFetch } from './inject-fetch.js';
import { databaseUrl, serverUrl, uniqueDatabaseName } from './test-database-names.js';

export interface TestApp {
  app: NestFastifyApplication;
  /**
   * Fastify's in-process injector: real routing, hooks, parsing and serialization, no sockets. Every
   * response of a documented operation is checked against openapi.json; a violation fails the test.
   */
  http: (options: InjectOptions) => Promise<LightMyRequestResponse>;
  /** The typed client of client/, as other services use it, over the same injector. */
  client: (token?: string) => UsersApiClient;
  close(): Promise<void>;
}

/**
 * The production application on the run's migrated test database, with quiet logs (or, given a
 * `logDestination` and a LOG_LEVEL, the log lines written there).
 */
export async function startTestApp(
  env: Environment = {},
  extraModules: Type[] = [],
  logDestination?: DestinationStream,
): Promise<TestApp> {
  const config = parseAppConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: process.env.TEST_DATABASE_URL,
    DEV_IDP_DATABASE_URL: process.env.TEST_IDP_DATABASE_URL,
    DB_MIGRATIONS_RUN: 'false',
    DB_POOL_MAX: '4',
    // The development session key lands here, not in the repository's ./data.
    DATA_DIR: join(tmpdir(), `users-api-test-${process.pid}`),
    ADMIN_EMAIL: 'admin@users-api.test',
    ADMIN_PASSWORD: 'Admin-Passw0rd!',
    REGISTRATION_ENABLED: 'true',
    // Keeps the equal-time padding of failed logins short in tests; its own test sets it explicitly.
    LOGIN_FAILURE_MIN_MS: '50',
    // Suites log in and register many times from 127.0.0.1; only the rate-limit suites set real limits.
    RATE_LIMIT_LOGIN: '100000/1m',
    RATE_LIMIT_LOGIN_FAILURES: '100000/1m',
    RATE_LIMIT_REGISTER: '100000/1m',
    RATE_LIMIT_ACCOUNT_RECOVERY: '100000/1m',
    RATE_LIMIT_ACCOUNT_EMAILS: '100000/1m',
    RATE_LIMIT_USER_LIST: '100000/1m',
    RATE_LIMIT_USER_UPDATE: '100000/1m',
    RATE_LIMIT_DEFAULT: '100000/1m',
    // Spec files share one database and identity provider: only the sync spec runs reconciliation, by hand.
    ZITADEL_RECONCILE_INTERVAL_SECONDS: '0',
    ...env,
  });
  const app = await createApp(config, extraModules, logDestination);
  await app.init();
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  await fastify.ready();
  const http = async (options: InjectOptions) => {
    const res = await fastify.inject(options);
    const violations = contractViolations({
      method: options.method ?? 'GET',
      url: typeof options.url === 'string' ? options.url : '/',
      status: res.statusCode,
      contentType: res.headers['content-type']?.toString(),
      body: res.body,
    });
    if (violations.length) throw new Error(`Response breaks openapi.json:\n${violations.join('\n')}`);
    return res;
  };
  const fetch = injectFetch(http as FastifyInstance['inject']);
  return {
    app,
    http,
    client: (token) => createUsersApiClient({ baseUrl: 'http://users-api.test', token, fetch }),
    close: () => app.close(),
  };
}

/**
 * An empty database of its own on the test server, for a spec that counts every row it inserts directly
 * (an app started on it with DB_MIGRATIONS_RUN=true migrates it). On the shared database, other spec
 * files' reconciliation passes mark such rows deleted, rightly: no Zitadel account backs them.
 */
export async function isolatedDatabase(purpose: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueDatabaseName(purpose);
  const onServer = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await onServer(`CREATE DATABASE "${name}"`);
  return { url: databaseUrl(name), drop: () => onServer(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}
