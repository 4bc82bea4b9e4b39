import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SYSTEM_ACTOR } from '../common/actor.js';
import type { AppConfig } from '../config/app-config.js';
import { UserAdminService } from './user-admin.service.js';

/**
 * Lifts suspensions whose `until` has passed. Every instance runs it; the row lock and the status check
 * in UserAdminService.activate make a second instance's attempt a harmless 409.
 */
@Injectable()
export class SuspensionExpiryJob implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SuspensionExpiryJob.name);
  private readonly intervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly admin: UserAdminService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.intervalMs = config.get('users', { infer: true }).suspensionCheckIntervalMs;
  }

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.runOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Before any shutdown hook closes Zitadel's stand-in or the pool that a run in progress still needs. */
  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async runOnce(): Promise<void> {
    try {
      const ended = await this.admin.endExpiredSuspensions(SYSTEM_ACTOR);
      if (ended) this.logger.log(`Lifted ${ended} expired suspension(s)`);
    } catch (error) {
      this.logger.warn({ err: error }, 'Checking for expired suspensions failed');
    }
  }
}
