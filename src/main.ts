import 'reflect-metadata';
import { existsSync } from 'node:fs';
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
