import { describe, expect, it, jest } from '@jest/globals';
import type { ConfigService } from '@nestjs/config';
import { ApiError } from '../../common/errors/api-error.js';
import type { AppConfig } from '../../config/app-config.js';
import type { UsersService } from '../../users/users.service.js';
import type { ZitadelConnection } from '../../zitadel/zitadel-connection.js';
import { ZitadelError, type ZitadelClient } from '../../zitadel/zitadel.client.js';
import type { ZitadelTokenClaims } from '../../zitadel/zitadel.types.js';
import { PermissionsService } from '../permissions.service.js';
import { newStrategyNames } from './strategy-names.js';
import { ZitadelOpaqueTokenStrategy } from './zitadel-opaque-token.strategy.js';

const ISSUER = 'https://auth.example.com';
const PROJECT = '69629023906488334';
const config = {
  get: (key: string) =>
    key === 'zitadel' ? { introspectionCacheSeconds: 30 } : { rolePermissions: { admin: ['admin:users'] } },
} as unknown as ConfigService<AppConfig, true>;

type Verdict =
  { kind: 'success'; user: unknown } | { kind: 'fail'; status?: number; reason: unknown } | { kind: 'error' };

function setUp(introspect: (token: string) => Promise<ZitadelTokenClaims | null>) {
  const introspectToken = jest.fn(introspect);
  const strategy = new ZitadelOpaqueTokenStrategy(
    { issuer: ISSUER, introspectToken } as unknown as ZitadelClient,
    { projectId: PROJECT } as ZitadelConnection,
    { readByZitadelId: () => Promise.resolve(null) } as unknown as UsersService,
    new PermissionsService(config),
    config,
    newStrategyNames(),
  );
  const run = (token: string) =>
    new Promise<Verdict>((resolve) => {
      const s = strategy as unknown as Record<string, unknown>;
      s.success = (user: unknown) => resolve({ kind: 'success', user });
      s.fail = (reason: unknown, status?: number) => resolve({ kind: 'fail', reason, status });
      s.error = () => resolve({ kind: 'error' });
      strategy.authenticate({ headers: { authorization: `Bearer ${token}` } });
    });
  return { run, introspectToken };
}

const active = (overrides: Partial<ZitadelTokenClaims> = {}): ZitadelTokenClaims => ({
  sub: '69629050806489455',
  iss: ISSUER,
  aud: ['reporting-service', PROJECT],
  exp: Math.floor(Date.now() / 1000) + 3600,
  roles: ['admin'],
  ...overrides,
});
const OPAQUE = 'dEnGhIFs3VnqcQU5D2zRSeiarB1nwH6goIKY0J8MWZbsnWcTuu1C59lW9DDCq1y7zLzeoBqLIpLS';

describe('the opaque-token strategy (introspection)', () => {
  it('authorizes a service account by the roles Zitadel reports, and asks Zitadel once while cached', async () => {
    const { run, introspectToken } = setUp(() => Promise.resolve(active()));
    const first = await run(OPAQUE);
    expect(first).toMatchObject({
      kind: 'success',
      user: { userId: null, roles: ['admin'], tokenKind: 'zitadel' },
    });
    expect(await run(OPAQUE)).toMatchObject({ kind: 'success' });
    expect(introspectToken).toHaveBeenCalledTimes(1);
  });

  it('never caches an inactive answer', async () => {
    const { run, introspectToken } = setUp(() => Promise.resolve(null));
    expect(await run(OPAQUE)).toMatchObject({ kind: 'fail', status: 401 });
    expect(await run(OPAQUE)).toMatchObject({ kind: 'fail', status: 401 });
    expect(introspectToken).toHaveBeenCalledTimes(2);
  });

  it.each([
    ['another project', active({ aud: ['reporting-service'] })],
    ['another issuer', active({ iss: 'https://evil.example.com' })],
    ['an expired token', active({ exp: Math.floor(Date.now() / 1000) - 1 })],
  ])('refuses an active answer for %s', async (_case, claims) => {
    const { run } = setUp(() => Promise.resolve(claims));
    expect(await run(OPAQUE)).toMatchObject({ kind: 'fail', status: 401 });
  });

  it('passes JWTs on and refuses junk without asking Zitadel', async () => {
    const { run, introspectToken } = setUp(() => Promise.resolve(active()));
    const jwtLike = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.e30.sig`;
    for (const token of [jwtLike, 'x'.repeat(40_000), 'short', 'has spaces in it, not a token']) {
      expect(await run(token)).toMatchObject({ kind: 'fail', status: 401 });
    }
    expect(introspectToken).not.toHaveBeenCalled();
  });

  it('answers Zitadel refusing the request with 401 and an outage with the 503 ApiError, never an error', async () => {
    const refused = setUp(() =>
      Promise.reject(new ZitadelError('invalid_argument', 'invalid_request', 'no')),
    );
    expect(await refused.run(OPAQUE)).toMatchObject({ kind: 'fail', status: 401 });
    const outage = ApiError.upstreamUnavailable('down');
    const down = setUp(() => Promise.reject(outage));
    expect(await down.run(OPAQUE)).toEqual({ kind: 'fail', status: 503, reason: outage });
  });
});
