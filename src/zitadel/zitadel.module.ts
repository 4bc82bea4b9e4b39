// Types only: erased from the build, so production never loads dev-idp.
import type { DevIdentityProvider } from '../../dev-idp/index.js';
import { randomBytes } from 'node:crypto';
import { Inject, Logger, Module, type BeforeApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/app-config.js';
import { DatabaseModule, DATABASE_CONNECTION_URL, EMBEDDED_POSTGRES } from '../database/database.module.js';
import { EMBEDDED_DATABASES, ensureDatabases, type EmbeddedPostgres } from '../database/embedded-postgres.js';
import { MetricsModule } from '../metrics/metrics.module.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { PasswordPolicyService } from './password-policy.service.js';
import { instrumentZitadelClient } from './zitadel.metrics.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from './zitadel-connection.js';
import { ZitadelClient } from './zitadel.client.js';

/** The running development identity provider, or null when a real Zitadel is configured. */
export const DEV_IDENTITY_PROVIDER = Symbol('DEV_IDENTITY_PROVIDER');

/** The running stand-in (dev-idp's own type, imported as a type only) and this service's API app at it. */
export type RunningDevIdentityProvider = DevIdentityProvider & {
  /** This service's API app at the stand-in, which introspects opaque tokens. */
  introspection: { clientId: string; clientSecret: string };
};

/**
 * The stand-in keeps its state in a database of its own, as a real Zitadel does: never the service's
 * pool or transactions. DEV_IDP_DATABASE_URL when set; else `dev_idp` on the embedded server; else a
 * database named after the service's with `_dev_idp` on the DATABASE_URL server, created when missing.
 */
async function devIdpDatabaseUrl(
  configured: string | undefined,
  embedded: EmbeddedPostgres | null,
  serviceDatabaseUrl: string,
): Promise<string> {
  if (configured) return configured;
  if (embedded) return embedded.server.urlFor(EMBEDDED_DATABASES.identityProvider);
  const url = new URL(serviceDatabaseUrl);
  const name = `${decodeURIComponent(url.pathname.slice(1)) || 'postgres'}_dev_idp`;
  try {
    await ensureDatabases(serviceDatabaseUrl, [name]);
  } catch (error) {
    throw new Error(
      `The development identity provider needs a database of its own: could not create "${name}" on the ` +
        `DATABASE_URL server (${(error as Error).message}). Create it, or set DEV_IDP_DATABASE_URL.`,
      { cause: error },
    );
  }
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

@Module({
  imports: [DatabaseModule, MetricsModule],
  providers: [
    {
      provide: DEV_IDENTITY_PROVIDER,
      inject: [ConfigService, DATABASE_CONNECTION_URL, EMBEDDED_POSTGRES],
      useFactory: async (
        config: ConfigService<AppConfig, true>,
        serviceDatabaseUrl: string,
        embedded: EmbeddedPostgres | null,
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
        // This service's API app, for introspection; a new secret each start (the stand-in keeps apps in memory).
        const introspection = {
          clientId: `${zitadel.clientId}-api`,
          clientSecret: randomBytes(32).toString('base64url'),
        };
        const idp = await startDevIdentityProvider({
          apiApps: [introspection],
          databaseUrl: await devIdpDatabaseUrl(zitadel.devIdpDatabaseUrl, embedded, serviceDatabaseUrl),
          clients: [
            {
              clientId: zitadel.clientId,
              redirectUris: [zitadel.redirectUri],
              postLogoutRedirectUris: zitadel.postLogoutRedirectUri ? [zitadel.postLogoutRedirectUri] : [],
            },
          ],
          admin: {
            email: auth.adminEmail,
            password: auth.adminPassword,
            resetPassword: auth.adminPasswordReset,
          },
          emailCodeSink: (_userId, email, code) =>
            logger.log(`Email verification code for ${email}: ${code}`),
          logger,
        });
        logger.log(`Development identity provider (Zitadel stand-in) at ${idp.url}`);
        return { ...idp, introspection };
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
            introspection: idp.introspection,
          };
        }
        return {
          ...common,
          url: z.url!,
          orgId: z.orgId!,
          projectId: z.projectId!,
          credentials: z.pat ? { pat: z.pat } : { keyFile: z.keyFile! },
          introspection: z.introspection,
        };
      },
    },
    {
      provide: ZitadelClient,
      inject: [ZITADEL_CONNECTION, MetricsService],
      useFactory: (connection: ZitadelConnection, metrics: MetricsService) => {
        const client = new ZitadelClient(connection, new Logger('Zitadel'));
        return instrumentZitadelClient(client, metrics, () => client.circuitState);
      },
    },
    PasswordPolicyService,
  ],
  exports: [ZitadelClient, ZITADEL_CONNECTION, DEV_IDENTITY_PROVIDER, PasswordPolicyService],
})
export class ZitadelModule implements BeforeApplicationShutdown {
  constructor(@Inject(DEV_IDENTITY_PROVIDER) private readonly idp: RunningDevIdentityProvider | null) {}

  /** Before the database closes (onApplicationShutdown), since the provider keeps its state there. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.idp?.close();
  }
}
