import { ChangeFeedModule } from '../change-feed/change-feed.module.js';
import { Inject, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { PassThrough, pipeline } from 'node:stream';
import type { AppConfig } from '../config/app-config.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { SessionsModule } from '../sessions/sessions.module.js';
import { UsersModule } from '../users/users.module.js';
import {
  DEV_IDENTITY_PROVIDER,
  ZitadelModule,
  type RunningDevIdentityProvider,
} from '../zitadel/zitadel.module.js';
import {
  WEBHOOK_SIGNING_KEY,
  ZITADEL_EVENTS_PATH,
  ZitadelEventsController,
  type RequestWithRawBody,
} from './zitadel-events.controller.js';
import { RECONCILE_OPTIONS, reconcileOptionsFrom, ZitadelReconciler } from './zitadel-reconciler.js';
import { ZitadelSyncMetrics } from './zitadel-sync.metrics.js';
import { ZitadelSyncService } from './zitadel-sync.service.js';

/**
 * Live sync with Zitadel: the signed Actions v2 webhook receiver and the periodic reconciliation. Uses
 * only the exported services of the users, sessions, Zitadel and metrics modules.
 */
@Module({
  imports: [ZitadelModule, UsersModule, SessionsModule, MetricsModule, ChangeFeedModule],
  controllers: [ZitadelEventsController],
  providers: [
    ZitadelSyncMetrics,
    ZitadelSyncService,
    ZitadelReconciler,
    { provide: RECONCILE_OPTIONS, inject: [ConfigService], useFactory: reconcileOptionsFrom },
    {
      provide: WEBHOOK_SIGNING_KEY,
      inject: [ConfigService, DEV_IDENTITY_PROVIDER],
      useFactory: (config: ConfigService<AppConfig, true>, idp: RunningDevIdentityProvider | null) =>
        config.get('zitadelSync', { infer: true }).webhookSigningKey ??
        // Embedded mode: a key for this process only, shared with the dev-idp when it learns our address.
        (idp ? randomBytes(32).toString('base64url') : null),
    },
  ],
  exports: [ZitadelSyncService, ZitadelReconciler],
})
export class ZitadelSyncModule implements OnModuleInit {
  private readonly logger = new Logger(ZitadelSyncModule.name);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @Inject(WEBHOOK_SIGNING_KEY) private readonly signingKey: string | null,
    @Inject(DEV_IDENTITY_PROVIDER) private readonly idp: RunningDevIdentityProvider | null,
  ) {}

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();

    // The signature covers the exact bytes sent, so this one route keeps a copy of its raw body while
    // Fastify's usual JSON parser (limits, errors) still parses it. Every other route is untouched.
    fastify.addHook('preParsing', (request, _reply, payload, done) => {
      if (request.routeOptions.url !== ZITADEL_EVENTS_PATH) return done(null, payload);
      const chunks: Buffer[] = [];
      const copy = new PassThrough();
      copy.on('data', (chunk: Buffer) => chunks.push(chunk));
      copy.on('end', () => ((request as RequestWithRawBody).rawBody = Buffer.concat(chunks)));
      pipeline(payload, copy, () => undefined);
      done(null, copy);
    });

    // Embedded mode: once we listen, point the dev-idp's webhook at us, as one would create a target in Zitadel.
    const idp = this.idp;
    const signingKey = this.signingKey;
    if (idp && signingKey) {
      fastify.addHook('onListen', (done) => {
        const address = fastify.server.address() as AddressInfo | null;
        if (address && typeof address === 'object') {
          const url = `http://${loopbackFor(address)}:${address.port}${ZITADEL_EVENTS_PATH}`;
          idp.setEventTarget({ url, signingKey });
          this.logger.log(`Development identity provider sends user events to ${url}`);
        }
        done();
      });
    }
  }
}

/** The dev-idp runs in this process: reach our socket over loopback whatever interface we bound. */
function loopbackFor(address: AddressInfo): string {
  if (address.address === '0.0.0.0' || address.address === '::') return '127.0.0.1';
  return address.family === 'IPv6' ? `[${address.address}]` : address.address;
}
