import { describe, expect, it } from '@jest/globals';
import { ConfigError, parseAppConfig } from './app-config.js';

describe('parseAppConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = parseAppConfig({});
    expect(config).toMatchObject({
      nodeEnv: 'development',
      http: { host: '127.0.0.1', port: 3000, bodyLimitBytes: 1_048_576, jsonBodyLimitBytes: 16_384 },
      log: { level: 'info' },
      database: {
        url: undefined,
        dataDir: './data',
        migrationsRun: true,
        poolMax: 10,
        statementTimeoutMs: 10_000,
      },
      metrics: { public: true, token: undefined },
      zitadel: {
        url: undefined,
        clientId: 'users-api',
        redirectUri: 'http://localhost:3000/api/users/login/callback',
        timeoutMs: 5_000,
        retries: 2,
      },
      auth: {
        registrationEnabled: false,
        issuer: 'users-api',
        audience: 'users-api',
        sessionTtlSeconds: 43_200,
        rememberMeTtlSeconds: 2_592_000,
      },
    });
    expect(config.auth.rolePermissions.admin).toContain('admin:users');
    expect(config.auth.rolePermissions.manager).toEqual(['admin:monitor']);
    expect(config.auth.rolePermissions.user).toEqual([]);
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

  const production = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://users@db:5432/users',
    ZITADEL_URL: 'https://auth.example.com',
    ZITADEL_ORG_ID: '1',
    ZITADEL_PROJECT_ID: '2',
    ZITADEL_CLIENT_ID: '3',
    ZITADEL_PAT: 'pat',
    SESSION_SIGNING_KEY_FILE: '/run/secrets/session-key.pem',
  };

  it('keeps metrics private in production unless configured', () => {
    expect(parseAppConfig(production).metrics.public).toBe(false);
    expect(parseAppConfig({ ...production, METRICS_PUBLIC: 'true' }).metrics.public).toBe(true);
    expect(() => parseAppConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN/);
  });

  it('refuses production without a real Zitadel, a database server or a session signing key', () => {
    expect(() => parseAppConfig({ ...production, DATABASE_URL: undefined })).toThrow(
      /DATABASE_URL: required in production/,
    );
    expect(() => parseAppConfig({ ...production, ZITADEL_URL: undefined })).toThrow(
      /ZITADEL_URL: required in production/,
    );
    expect(() => parseAppConfig({ ...production, SESSION_SIGNING_KEY_FILE: undefined })).toThrow(
      /SESSION_SIGNING_KEY/,
    );
  });

  it('requires the rest of the Zitadel settings once ZITADEL_URL is set', () => {
    expect(() => parseAppConfig({ ZITADEL_URL: 'https://auth.example.com' })).toThrow(
      /ZITADEL_ORG_ID.*ZITADEL_PROJECT_ID.*ZITADEL_CLIENT_ID.*ZITADEL_PAT/,
    );
  });

  it('parses ROLE_PERMISSIONS and names it when wrong', () => {
    const config = parseAppConfig({ ROLE_PERMISSIONS: '{"support": ["admin:users"]}' });
    expect(config.auth.rolePermissions).toEqual({ support: ['admin:users'] });
    expect(() => parseAppConfig({ ROLE_PERMISSIONS: '{"x": ["admin:everything"]}' })).toThrow(
      /ROLE_PERMISSIONS/,
    );
    expect(() => parseAppConfig({ ROLE_PERMISSIONS: 'not json' })).toThrow(/ROLE_PERMISSIONS: must be JSON/);
  });
  it('takes LOGIN_REDIRECT_URL as a path or an http(s) URL, default /', () => {
    expect(parseAppConfig({}).auth.loginRedirectUrl).toBe('/');
    for (const value of ['/app/home?x=1', 'https://chat.example.com/welcome', 'http://localhost:5173/'])
      expect(parseAppConfig({ LOGIN_REDIRECT_URL: value }).auth.loginRedirectUrl).toBe(value);
    for (const value of ['//evil.example', '/\\evil.example', 'javascript:alert(1)', 'home', 'ftp://x/']) {
      expect(() => parseAppConfig({ LOGIN_REDIRECT_URL: value })).toThrow(/LOGIN_REDIRECT_URL/);
    }
  });
  it('defaults the rate limits to the contract and parses LIMIT/WINDOW', () => {
    const config = parseAppConfig({});
    expect(config.rateLimits).toEqual({
      login: { limit: 10, windowSeconds: 60 },
      loginFailures: { limit: 5, windowSeconds: 900 },
      register: { limit: 5, windowSeconds: 3600 },
      accountRecovery: { limit: 10, windowSeconds: 900 },
      accountEmails: { limit: 3, windowSeconds: 3600 },
      userList: { limit: 60, windowSeconds: 60 },
      userUpdate: { limit: 30, windowSeconds: 60 },
      default: { limit: 300, windowSeconds: 60 },
    });
    expect(config.redis).toEqual({ url: undefined, keyPrefix: 'users-api:', timeoutMs: 500 });
    const custom = parseAppConfig({
      RATE_LIMIT_LOGIN: '3/30s',
      RATE_LIMIT_REGISTER: '7/2h',
      RATE_LIMIT_DEFAULT: '9/45',
    });
    expect(custom.rateLimits.login).toEqual({ limit: 3, windowSeconds: 30 });
    expect(parseAppConfig({ RATE_LIMIT_LOGIN_FAILURES: '4/1h' }).rateLimits.loginFailures).toEqual({
      limit: 4,
      windowSeconds: 3600,
    });
    expect(custom.rateLimits.register).toEqual({ limit: 7, windowSeconds: 7200 });
    expect(custom.rateLimits.default).toEqual({ limit: 9, windowSeconds: 45 });
    expect(() => parseAppConfig({ RATE_LIMIT_LOGIN: 'ten a minute' })).toThrow(/RATE_LIMIT_LOGIN/);
    expect(() => parseAppConfig({ RATE_LIMIT_USER_LIST: '0/1m' })).toThrow(/RATE_LIMIT_USER_LIST/);
    expect(() => parseAppConfig({ RATE_LIMIT_USER_UPDATE: '5/2d' })).toThrow(/RATE_LIMIT_USER_UPDATE/);
    expect(() => parseAppConfig({ REDIS_URL: 'http://cache:6379' })).toThrow(/REDIS_URL/);
  });

  it("parses TRUST_PROXY into Fastify's trustProxy and names it when wrong", () => {
    expect(parseAppConfig({}).http.trustProxy).toBe(false);
    expect(parseAppConfig({ TRUST_PROXY: 'true' }).http.trustProxy).toBe(true);
    expect(parseAppConfig({ TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(parseAppConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,loopback,::1' }).http.trustProxy).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
      'loopback',
      '::1',
    ]);
    expect(() => parseAppConfig({ TRUST_PROXY: 'proxy.internal' })).toThrow(/TRUST_PROXY/);
    expect(() => parseAppConfig({ TRUST_PROXY: '10.0.0.0/33' })).toThrow(/TRUST_PROXY/);
  });
});
