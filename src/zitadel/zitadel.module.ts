import { Inject, Logger, Module, type BeforeApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/app-config.js';
import { DatabaseModule, DATABASE_CONNECTION_URL } from '../database/database.module.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { HttpZitadelClient } from './http-zitadel.client.js';
import { instrumentZitadelClient } from './zitadel.metrics.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from './zitadel-connection.js';
import { ZitadelClient } from './zitadel.client.js';

/** The running development identity provider, or null when a real Zitadel is configured. */
export const DEV_IDENTITY_PROVIDER = Symbol('DEV_IDENTITY_PROVIDER');

export interface RunningDevIdentityProvider {
  url: string;
  serviceAccountToken: string;
  orgId: string;
  projectId: string;
  close(): Promise<void>;
  lastEmailCode(userId: string): Promise<string | undefined>;
  /** Where its signed Actions v2 user events go (the zitadel-sync module sets it once we listen). */
  setEventTarget(target: { url: string; signingKey: string } | null): void;
}

@Module({
  imports: [DatabaseModule, MetricsModule],
  providers: [
    {
      provide: DEV_IDENTITY_PROVIDER,
      inject: [ConfigService, DATABASE_CONNECTION_URL],
      useFactory: async (
        config: ConfigService<AppConfig, true>,
        databaseUrl: string,
      ): Promise<RunningDevIdentityProvider | null> => {
        const zitadel = config.get('zitadel', { infer: true });
        if (zitadel.url) return null;
        // Configuration already refuses production without ZITADEL_URL; this is the second lock on that door.
        if (config.get('nodeEnv', { infer: true }) === 'production') {
          throw new Error('The development identity provider never runs in production');
        }
        const auth = config.get('auth', { infer: true });
        const logger = new Logger('DevIdentityProvider');
        // Loaded only here, so production never even imports it.
        const { startDevIdentityProvider } = await import('../../dev-idp/index.js');
        const idp = await startDevIdentityProvider({
          databaseUrl,
          clients: [
            {
              clientId: zitadel.clientId,
              redirectUris: [zitadel.redirectUri],
              postLogoutRedirectUris: zitadel.postLogoutRedirectUri ? [zitadel.postLogoutRedirectUri] : [],
            },
          ],
          admin: { email: auth.adminEmail, password: auth.adminPassword },
          emailCodeSink: (_userId, email, code) =>
            logger.log(`Email verification code for ${email}: ${code}`),
          logger,
        });
        logger.log(`Development identity provider (Zitadel stand-in) at ${idp.url}`);
        return idp;
      },
    },
    {
      provide: ZITADEL_CONNECTION,
      inject: [ConfigService, DEV_IDENTITY_PROVIDER],
      useFactory: (
        config: ConfigService<AppConfig, true>,
        idp: RunningDevIdentityProvider | null,
      ): ZitadelConnection => {
        const z = config.get('zitadel', { infer: true });
        const common = {
          clientId: z.clientId,
          clientSecret: z.clientSecret,
          redirectUri: z.redirectUri,
          postLogoutRedirectUri: z.postLogoutRedirectUri,
          timeoutMs: z.timeoutMs,
          retries: z.retries,
        };
        if (idp) {
          return {
            ...common,
            url: idp.url,
            orgId: idp.orgId,
            projectId: idp.projectId,
            credentials: { pat: idp.serviceAccountToken },
          };
        }
        return {
          ...common,
          url: z.url!,
          orgId: z.orgId!,
          projectId: z.projectId!,
          credentials: z.pat ? { pat: z.pat } : { keyFile: z.keyFile! },
        };
      },
    },
    {
      provide: ZitadelClient,
      inject: [ZITADEL_CONNECTION, MetricsService],
      useFactory: (connection: ZitadelConnection, metrics: MetricsService) => {
        const client = new HttpZitadelClient(connection, new Logger('Zitadel'));
        return instrumentZitadelClient(client, metrics, () => client.circuitState);
      },
    },
  ],
  exports: [ZitadelClient, ZITADEL_CONNECTION, DEV_IDENTITY_PROVIDER],
})
export class ZitadelModule implements BeforeApplicationShutdown {
  constructor(@Inject(DEV_IDENTITY_PROVIDER) private readonly idp: RunningDevIdentityProvider | null) {}

  /** Before the database closes (onApplicationShutdown), since the provider keeps its state there. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.idp?.close();
  }
}
