import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditService } from './audit.service.js';
import { AuditEvent } from './entities/audit-event.entity.js';

/** The audit trail of admin writes. Its route lives with the users routes (`GET /api/users/:id/audit`). */
@Module({
  imports: [TypeOrmModule.forFeature([AuditEvent])],
  providers: [AuditService],
  exports: [AuditService],
})
export class AuditModule {}
