import { Module } from '@nestjs/common';
import { DatabaseModule } from '../database/database.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { ChangeFeedService } from './change-feed.service.js';

/** PostgreSQL LISTEN/NOTIFY for the in-process caches of sessions (token checks) and user rows. */
@Module({
  imports: [DatabaseModule, MetricsModule],
  providers: [ChangeFeedService],
  exports: [ChangeFeedService],
})
export class ChangeFeedModule {}
