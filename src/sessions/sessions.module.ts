import { forwardRef, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditModule } from '../audit/audit.module.js';
import { ChangeFeedModule } from '../change-feed/change-feed.module.js';
import { UsersModule } from '../users/users.module.js';
import { Session } from './entities/session.entity.js';
import { SessionsController } from './sessions.controller.js';
import { SessionsService } from './sessions.service.js';

@Module({
  imports: [
    TypeOrmModule.forFeature([Session]),
    forwardRef(() => UsersModule),
    AuditModule,
    ChangeFeedModule,
  ],
  controllers: [SessionsController],
  providers: [SessionsService],
  exports: [SessionsService],
})
export class SessionsModule {}
