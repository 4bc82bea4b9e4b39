import { Module } from '@nestjs/common';
import { PassportModule } from '@nestjs/passport';
import { ConfigService } from '@nestjs/config';
import { APP_GUARD, Reflector } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { LoginFailureThrottle } from '../common/rate-limit/login-failures.js';
import type { AppConfig } from '../config/app-config.js';
import { SessionsModule } from '../sessions/sessions.module.js';
import { UsersModule } from '../users/users.module.js';
import { UsersService } from '../users/users.service.js';
import { ZitadelModule } from '../zitadel/zitadel.module.js';
import { accessGuard } from './access.guard.js';
import { AuthController } from './auth.controller.js';
import { AuthService } from './auth.service.js';
import { OidcLoginState } from './entities/oidc-login-state.entity.js';
import { PermissionsService } from './permissions.service.js';
import { loadSessionSigningKey } from './session-signing-key.js';
import { SESSION_SIGNING_KEY, SessionTokenService } from './session-token.service.js';
import { SessionTokenStrategy } from './strategies/session-token.strategy.js';
import { newStrategyNames, STRATEGY_NAMES, type StrategyNames } from './strategies/strategy-names.js';
import { ZitadelAccessTokenStrategy } from './strategies/zitadel-access-token.strategy.js';
import { ZitadelOpaqueTokenStrategy } from './strategies/zitadel-opaque-token.strategy.js';

@Module({
  imports: [
    TypeOrmModule.forFeature([OidcLoginState]),
    PassportModule.register({ session: false }),
    UsersModule,
    SessionsModule,
    ZitadelModule,
  ],
  controllers: [AuthController],
  providers: [
    {
      provide: SESSION_SIGNING_KEY,
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) => {
        const auth = config.get('auth', { infer: true });
        return loadSessionSigningKey({
          key: auth.signingKey,
          file: auth.signingKeyFile,
          dataDir: config.get('database', { infer: true }).dataDir,
        });
      },
    },
    SessionTokenService,
    { provide: STRATEGY_NAMES, useFactory: newStrategyNames },
    SessionTokenStrategy,
    ZitadelAccessTokenStrategy,
    ZitadelOpaqueTokenStrategy,
    PermissionsService,
    AuthService,
    LoginFailureThrottle,
    {
      provide: APP_GUARD,
      inject: [
        Reflector,
        STRATEGY_NAMES,
        UsersService,
        SessionTokenStrategy,
        ZitadelAccessTokenStrategy,
        ZitadelOpaqueTokenStrategy,
      ],
      // The strategies are injected only so that they are registered before the guard runs.
      useFactory: (reflector: Reflector, names: StrategyNames, users: UsersService) =>
        new (accessGuard(names))(reflector, (id) => users.orgOf(id)),
    },
  ],
})
export class AuthModule {}
