import { forwardRef, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditModule } from '../audit/audit.module.js';
import { SessionsModule } from '../sessions/sessions.module.js';
import { ZitadelModule } from '../zitadel/zitadel.module.js';
import { User } from './entities/user.entity.js';
import { SuspensionExpiryJob } from './suspension-expiry.job.js';
import { UserAdminService } from './user-admin.service.js';
import { UsersController } from './users.controller.js';
import { UsersService } from './users.service.js';

@Module({
  // Sessions and users need each other: suspending a user ends their sessions, and the sessions routes
  // answer 404 for an unknown user.
  imports: [TypeOrmModule.forFeature([User]), forwardRef(() => SessionsModule), ZitadelModule, AuditModule],
  controllers: [UsersController],
  providers: [UsersService, UserAdminService, SuspensionExpiryJob],
  exports: [UsersService],
})
export class UsersModule {}
