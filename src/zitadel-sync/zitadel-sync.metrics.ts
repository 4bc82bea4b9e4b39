import { Injectable } from '@nestjs/common';
import { Counter, Gauge } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service.js';

/** Prometheus metrics of the Zitadel sync, registered on the application's registry. */
@Injectable()
export class ZitadelSyncMetrics {
  /** outcome: applied | stale (replayed or older) | ignored (unhandled type) | rejected (bad signature). */
  readonly events: Counter<'outcome'>;
  /** outcome: completed | skipped (another instance holds the lock) | failed. */
  readonly reconcileRuns: Counter<'outcome'>;
  readonly reconcileChecked: Counter;
  readonly reconcileFixed: Counter;
  readonly lastReconcile: Gauge;

  constructor(metrics: MetricsService) {
    const registers = [metrics.registry];
    this.events = new Counter({
      name: 'zitadel_events_total',
      help: 'Zitadel webhook events received, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.reconcileRuns = new Counter({
      name: 'zitadel_reconcile_runs_total',
      help: 'Reconciliation runs against Zitadel, by outcome',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.reconcileChecked = new Counter({
      name: 'zitadel_reconcile_users_checked_total',
      help: 'Users compared with Zitadel by reconciliation',
      registers,
    });
    this.reconcileFixed = new Counter({
      name: 'zitadel_reconcile_users_fixed_total',
      help: 'Cached users that reconciliation found out of date and repaired',
      registers,
    });
    this.lastReconcile = new Gauge({
      name: 'zitadel_reconcile_last_success_timestamp_seconds',
      help: 'When the last reconciliation run completed (unix seconds)',
      registers,
    });
  }
}
