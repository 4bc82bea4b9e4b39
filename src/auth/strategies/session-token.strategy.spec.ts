import { randomBytes, randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { ConfigService } from '@nestjs/config';
import type { Reflector } from '@nestjs/core';
import type { ExecutionContext } from '@nestjs/common';
import jwt from 'jsonwebtoken';
import type { AppConfig } from '../../config/app-config.js';
import type { SessionsService } from '../../sessions/sessions.service.js';
import type { UsersService } from '../../users/users.service.js';
import type { ZitadelConnection } from '../../zitadel/zitadel-connection.js';
import type { ZitadelClient } from '../../zitadel/zitadel.client.js';
import { accessGuard } from '../access.guard.js';
import { PermissionsService } from '../permissions.service.js';
import type { AuthenticatedRequest } from '../principal.js';
import { sessionSigningKey } from '../session-signing-key.js';
import { SessionTokenService } from '../session-token.service.js';
import { SessionTokenStrategy } from './session-token.strategy.js';
import { newStrategyNames } from './strategy-names.js';
import { ZitadelAccessTokenStrategy } from './zitadel-access-token.strategy.js';
import { ZitadelOpaqueTokenStrategy } from './zitadel-opaque-token.strategy.js';

const config = {
  get: () => ({
    issuer: 'users-api',
    audience: 'users-api',
    rolePermissions: {},
    introspectionCacheSeconds: 0,
  }),
} as unknown as ConfigService<AppConfig, true>;

describe('the session-token strategy behind the global guard', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('verifies a token once, and still checks its session on every request', async () => {
    const userId = randomUUID();
    const sessionId = randomUUID();
    const tokens = new SessionTokenService(sessionSigningKey(randomBytes(32).toString('base64')), config);
    const authenticate = jest.fn<SessionsService['authenticate']>();
    authenticate.mockResolvedValue({
      sessionId,
      userId,
      zitadelId: 'z-1',
      roles: ['user'],
      orgId: 'o-1',
      botId: null,
    });
    const permissions = new PermissionsService(config);
    const names = newStrategyNames();
    new SessionTokenStrategy(tokens, { authenticate } as unknown as SessionsService, permissions, names);
    new ZitadelAccessTokenStrategy(
      { issuer: 'http://idp.invalid' } as ZitadelClient,
      { projectId: 'p' } as ZitadelConnection,
      {} as UsersService,
      permissions,
      names,
    );
    new ZitadelOpaqueTokenStrategy(
      { issuer: 'http://idp.invalid' } as ZitadelClient,
      { projectId: 'p' } as ZitadelConnection,
      {} as UsersService,
      permissions,
      config,
      names,
    );
    const guard = new (accessGuard(names))({
      getAllAndOverride: () => 'authenticated',
    } as unknown as Reflector);
    const token = tokens.sign({ userId, sessionId, expiresAt: new Date(Date.now() + 60_000) });
    const call = async () => {
      const request = { headers: { authorization: `Bearer ${token}` }, params: {} } as AuthenticatedRequest;
      const context = {
        getHandler: () => call,
        getClass: () => Object,
        switchToHttp: () => ({ getRequest: () => request, getResponse: () => ({}) }),
      } as unknown as ExecutionContext;
      await guard.canActivate(context);
      return request.user;
    };
    const verify = jest.spyOn(jwt, 'verify');

    expect(await call()).toMatchObject({ userId, sessionId, tokenKind: 'session' });
    expect(await call()).toMatchObject({ userId, sessionId });
    expect(verify).toHaveBeenCalledTimes(1);
    expect(authenticate).toHaveBeenCalledTimes(2);

    authenticate.mockResolvedValue(null);
    await expect(call()).rejects.toMatchObject({ code: 'unauthorized' });
  });
});
