import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createApp } from './app.js';
import { ConfigError, parseAppConfig } from './config/app-config.js';
import { EmbeddedPostgresError } from './database/embedded-postgres.js';
import { startBanner } from './start-banner.js';

// A local .env is a development convenience; real deployments pass the environment directly.
if (existsSync('.env')) process.loadEnvFile('.env');

let config;
try {
  config = parseAppConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(1);
}

let app: NestFastifyApplication;
try {
  app = await createApp(config);
  await app.listen({ port: config.http.port, host: config.http.host });
} catch (error) {
  // A problem the person starting us can fix (DATA_DIR in use, embedded database missing): no stack trace.
  if (!(error instanceof EmbeddedPostgresError)) throw error;
  console.error(error.message);
  process.exit(1);
}
if (config.nodeEnv !== 'production' && config.log.level !== 'silent') {
  const banner = startBanner(app, config, await app.getUrl());
  // After the start-up log lines, which pino writes asynchronously (through a worker when pretty).
  setTimeout(() => process.stdout.write(`${banner}\n`), 250).unref();
}

const logger = new Logger('Shutdown');
const SHUTDOWN_DEADLINE_MS = 15_000;
/** How long requests in flight at SIGTERM may take before their connections are cut. */
const GRACE_MS = 5_000;

/**
 * SIGTERM (orchestrators) and SIGINT (Ctrl-C): stop accepting connections, let in-flight requests finish,
 * close the pool and the embedded database (flushing it to disk), then exit 0. A hung close is cut off.
 */
async function shutdown(signal: NodeJS.Signals): Promise<void> {
  logger.log(`${signal} received: shutting down`);
  const deadline = setTimeout(() => {
    logger.error(`Shutdown took longer than ${SHUTDOWN_DEADLINE_MS} ms; exiting`);
    process.exit(1);
  }, SHUTDOWN_DEADLINE_MS);
  deadline.unref();
  // Fastify closes idle keep-alive connections when it closes; a connection whose request was still in
  // flight then would stay open for its keep-alive timeout (72 s) and hold the close. Answers from now on
  // close their connection, and idle ones are swept until the server is closed.
  const server = app.getHttpServer();
  server.keepAliveTimeout = 1;
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  sweep.unref();
  // In-flight requests get a grace period; connections still open after it (a client that never finishes
  // its request, or one whose request the client abandoned) are cut so the shutdown cannot hang on them.
  const cut = setTimeout(() => {
    server.getConnections((_error: Error | null, open: number) => {
      if (open) logger.warn(`Closing ${open} connection(s) still open ${GRACE_MS} ms after ${signal}`);
      server.closeAllConnections();
    });
  }, GRACE_MS);
  cut.unref();
  await app.close();
  clearInterval(sweep);
  clearTimeout(cut);
  logger.log('Shutdown complete');
  process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void shutdown(s));
