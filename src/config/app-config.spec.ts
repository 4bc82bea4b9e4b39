import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseAppConfig } from './app-config.js';

describe('parseAppConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = parseAppConfig({});
    expect(config).toEqual({
      nodeEnv: 'development',
      http: { host: '127.0.0.1', port: 3000, bodyLimitBytes: 1_048_576 },
      log: { level: 'info' },
      database: {
        url: undefined,
        dataDir: './data',
        migrationsRun: true,
        poolMax: 10,
        statementTimeoutMs: 10_000,
      },
      metrics: { public: true, token: undefined },
    });
  });

  it('names the variable when a value is bad', () => {
    expect(() => parseAppConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => parseAppConfig({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => parseAppConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => parseAppConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL: must be a postgres/);
    expect(() => parseAppConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
    expect(() => parseAppConfig({ DB_MIGRATIONS_RUN: 'maybe' })).toThrow(
      /DB_MIGRATIONS_RUN: must be true or false/,
    );
  });

  it('reports every bad variable at once', () => {
    expect(() => parseAppConfig({ PORT: 'x', NODE_ENV: 'staging' })).toThrow(/NODE_ENV.*PORT|PORT.*NODE_ENV/);
  });

  it('treats empty strings as unset', () => {
    expect(parseAppConfig({ PORT: '', DATABASE_URL: '' }).http.port).toBe(3000);
    expect(parseAppConfig({ DATABASE_URL: '' }).database.url).toBeUndefined();
  });

  it('parses numbers and flags', () => {
    const config = parseAppConfig({
      PORT: '8080',
      DB_MIGRATIONS_RUN: 'false',
      DATABASE_URL: 'postgresql://u@db:5432/users',
    });
    expect(config.http.port).toBe(8080);
    expect(config.database.migrationsRun).toBe(false);
    expect(config.database.url).toBe('postgresql://u@db:5432/users');
  });

  it('keeps metrics private in production unless configured', () => {
    expect(parseAppConfig({ NODE_ENV: 'production' }).metrics.public).toBe(false);
    expect(parseAppConfig({ NODE_ENV: 'production', METRICS_PUBLIC: 'true' }).metrics.public).toBe(true);
    expect(() => parseAppConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
  });
});
