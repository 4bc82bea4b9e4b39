import type { INestApplication } from '@nestjs/common';
import type { AppConfig } from './config/app-config.js';
import { EMBEDDED_POSTGRES } from './database/database.module.js';
import type { EmbeddedPostgres } from './database/embedded-postgres.js';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from './zitadel/zitadel.module.js';

/**
 * The few lines a person needs after `npm start`: where the API and Swagger UI are, how to log in, and
 * what runs embedded. Printed once the server listens; never logged in production (no secret goes there
 * anyway: a generated password only exists when the embedded identity provider, a development tool, runs).
 */
export function startBanner(app: INestApplication, config: AppConfig, listeningOn: string): string {
  const base = listeningOn.replace('://0.0.0.0', '://localhost').replace('://[::]', '://localhost');
  const embedded = app.get<EmbeddedPostgres | null>(EMBEDDED_POSTGRES, { strict: false });
  const idp = app.get<RunningDevIdentityProvider | null>(DEV_IDENTITY_PROVIDER, { strict: false });
  const lines = [
    '',
    `users-api is ready at ${base}`,
    `  Swagger UI  ${base}/docs  (POST /api/users/login, copy session_token, then Authorize)`,
  ];
  const admin = idp?.admin;
  if (admin) {
    lines.push(`  Admin       ${admin.email}`);
    if (admin.outcome === 'created' && admin.generatedPassword) {
      lines.push(
        `  Password    ${admin.generatedPassword}  (generated now and shown only this once; ` +
          'to choose another, start once with ADMIN_PASSWORD=… ADMIN_PASSWORD_RESET=true)',
      );
    } else if (admin.outcome === 'created') {
      lines.push('  Password    ADMIN_PASSWORD (the admin was created with it now)');
    } else if (admin.outcome === 'password_reset') {
      lines.push('  Password    ADMIN_PASSWORD (the admin password was reset to it now)');
    } else if (admin.passwordMatches === false) {
      lines.push(
        "  Password    WARNING: ADMIN_PASSWORD is not this admin's password (it was set when the admin was " +
          'created and is kept). Start once with ADMIN_PASSWORD_RESET=true to make ADMIN_PASSWORD the password.',
      );
    } else if (admin.passwordMatches === true) {
      lines.push('  Password    ADMIN_PASSWORD');
    } else {
      lines.push(
        '  Password    the one shown when the admin was created (reset: ADMIN_PASSWORD=… ADMIN_PASSWORD_RESET=true)',
      );
    }
  }
  lines.push(
    embedded
      ? `  Database    embedded PostgreSQL ${embedded.server.version} in ${embedded.server.cluster} (127.0.0.1:${embedded.server.port})`
      : `  Database    ${redactedUrl(config.database.url!)}`,
    idp
      ? `  Identity    embedded Zitadel stand-in (dev-idp) at ${idp.url}: for development only`
      : `  Identity    Zitadel at ${config.zitadel.url}`,
    '',
  );
  return lines.join('\n');
}

function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'DATABASE_URL';
  }
}
