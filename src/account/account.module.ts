import { Module } from '@nestjs/common';
import { AuditModule } from '../audit/audit.module.js';
import { LoginFailureThrottle } from '../common/rate-limit/login-failures.js';
import { SessionsModule } from '../sessions/sessions.module.js';
import { SettingsModule } from '../settings/settings.module.js';
import { UsersModule } from '../users/users.module.js';
import { ZitadelModule } from '../zitadel/zitadel.module.js';
import { AccountController } from './account.controller.js';
import { AccountService } from './account.service.js';

/** Account self-service: password reset and change, email change, resend, export and erasure. */
@Module({
  imports: [UsersModule, SessionsModule, SettingsModule, AuditModule, ZitadelModule],
  controllers: [AccountController],
  providers: [AccountService, LoginFailureThrottle],
})
export class AccountModule {}
