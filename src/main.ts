import 'reflect-metadata';
import { existsSync } from 'node:fs';
import { Logger } from '@nestjs/common';
import { createApp } from './app.js';
import { ConfigError, parseAppConfig } from './config/app-config.js';

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

const app = await createApp(config);
await app.listen({ port: config.http.port, host: config.http.host });

const logger = new Logger('Shutdown');
const SHUTDOWN_DEADLINE_MS = 15_000;

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
  await app.close();
  logger.log('Shutdown complete');
  process.exit(0);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, (s) => void shutdown(s));
