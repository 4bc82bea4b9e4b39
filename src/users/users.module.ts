import { forwardRef, Module } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CURSOR_SIGNER, loadCursorSigner } from '../common/http/cursor-signer.js';
import type { AppConfig } from '../config/app-config.js';
import { AuditModule } from '../audit/audit.module.js';
import { ChangeFeedModule } from '../change-feed/change-feed.module.js';
import { SessionsModule } from '../sessions/sessions.module.js';
import { ZitadelModule } from '../zitadel/zitadel.module.js';
import { BotRolesController } from './bots/bot-roles.controller.js';
import { BotRolesService } from './bots/bot-roles.service.js';
import { UserBotRole } from './entities/user-bot-role.entity.js';
import { User } from './entities/user.entity.js';
import { SuspensionExpiryJob } from './suspension-expiry.job.js';
import { UserAdminService } from './user-admin.service.js';
import { UserVariablesController } from './user-variables.controller.js';
import { UserVariablesService } from './user-variables.service.js';
import { UsersController } from './users.controller.js';
import { UsersService } from './users.service.js';

@Module({
  // Sessions and users need each other: suspending a user ends their sessions, and the sessions routes
  // answer 404 for an unknown user.
  imports: [
    TypeOrmModule.forFeature([User, UserBotRole]),
    forwardRef(() => SessionsModule),
    ZitadelModule,
    AuditModule,
    ChangeFeedModule,
  ],
  controllers: [UsersController, UserVariablesController, BotRolesController],
  providers: [
    UsersService,
    BotRolesService,
    UserAdminService,
    SuspensionExpiryJob,
    UserVariablesService,
    {
      provide: CURSOR_SIGNER,
      inject: [ConfigService],
      useFactory: (config: ConfigService<AppConfig, true>) =>
        loadCursorSigner({
          configured: config.get('users', { infer: true }).cursorSigningKey,
          sessionKey: config.get('auth', { infer: true }).signingKey,
          sessionKeyFile: config.get('auth', { infer: true }).signingKeyFile,
          dataDir: config.get('database', { infer: true }).dataDir,
        }),
    },
  ],
  exports: [UsersService],
})
export class UsersModule {}
