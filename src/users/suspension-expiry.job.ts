import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { SYSTEM_ACTOR } from '../common/actor.js';
import type { AppConfig } from '../config/app-config.js';
import { UserAdminService } from './user-admin.service.js';

export const SUSPENSION_EXPIRY_INTERVAL = 'suspension-expiry';

/**
 * Lifts suspensions whose `until` has passed, every SUSPENSION_CHECK_INTERVAL_MS, as a named interval of
 * @nestjs/schedule (a dynamic one: the period comes from configuration). Every instance runs it; the row
 * lock and the status check in UserAdminService.activate make a second instance's attempt a harmless 409.
 * A run still in progress when the next tick comes is not doubled.
 */
@Injectable()
export class SuspensionExpiryJob implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(SuspensionExpiryJob.name);
  private readonly intervalMs: number;
  private running: Promise<void> | undefined;

  constructor(
    private readonly admin: UserAdminService,
    private readonly scheduler: SchedulerRegistry,
    config: ConfigService<AppConfig, true>,
  ) {
    this.intervalMs = config.get('users', { infer: true }).suspensionCheckIntervalMs;
  }

  onApplicationBootstrap(): void {
    const interval = setInterval(() => {
      this.running ??= this.runOnce().finally(() => (this.running = undefined));
    }, this.intervalMs);
    interval.unref();
    this.scheduler.addInterval(SUSPENSION_EXPIRY_INTERVAL, interval);
  }

  /** Before any shutdown hook closes Zitadel's stand-in or the pool that a run in progress still needs. */
  async onModuleDestroy(): Promise<void> {
    if (this.scheduler.doesExist('interval', SUSPENSION_EXPIRY_INTERVAL))
      this.scheduler.deleteInterval(SUSPENSION_EXPIRY_INTERVAL);
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
