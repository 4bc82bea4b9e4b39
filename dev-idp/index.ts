/**
 * DEVELOPMENT AND TEST STAND-IN FOR ZITADEL. NEVER USE IT IN PRODUCTION.
 *
 * When no real Zitadel is configured, users-api starts this embedded identity provider. It serves Zitadel's
 * services over Connect from Zitadel's own descriptors (user, session, settings and organization v2,
 * authorization v2beta) with Zitadel's error ids, and OIDC with PKCE, so the service's real client runs
 * unchanged against it. Several organisations, one project, TOTP as the only second factor, no federation,
 * and it hands out the service account token to whoever starts it. See README.md beside this file.
 */
import { randomBytes } from 'node:crypto';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ClientConfig, IdpContext, Logger, LoginSettings } from './context.js';
import {
  checkPasswordPolicy,
  DEFAULT_PASSWORD_COMPLEXITY,
  generatePassword,
  hashPassword,
  passwordMatches,
  type PasswordComplexity,
} from './credentials.js';
import { registerConnectServices } from './connect-api.js';
import { type ZitadelError, useOAuthErrors } from './errors.js';
import { EventDispatcher, type EventTarget } from './events.js';
import { TokenSigner } from './keys.js';
import { registerOidcRoutes } from './oidc.js';
import { type Queryable, Store } from './store.js';

/** The options: those the schema below validates (`optionsSchema`), and the callbacks and policies. */
export type DevIdentityProviderOptions = z.input<typeof optionsSchema> & {
  /** Receives each email verification code that Zitadel would have emailed. */
  emailCodeSink?: (userId: string, email: string, code: string) => void;
  /** Receives every password-reset code "mailed" (default: logged). */
  passwordCodeSink?: (userId: string, email: string, code: string) => void;
  logger?: Logger;
  /** Where to send Actions v2 webhook events (signed with `signingKey`); also settable later. */
  eventTarget?: EventTarget;
  /** The login policy (default: password logins allowed, MFA not forced); also settable later. */
  loginSettings?: Partial<LoginSettings>;
};

export interface DevIdentityProvider {
  url: string;
  issuer: string;
  serviceAccountToken: string;
  orgId: string;
  projectId: string;
  close(): Promise<void>;
  /** What start-up did with the configured admin (for the service's start banner). */
  admin?: AdminOutcome;
  /** The pending email verification code of a user, as a test would read it from the mailbox. */
  lastEmailCode(userId: string): Promise<string | undefined>;
  /**
   * Sends signed Actions v2 events for every user and grant change to `target` (null: stop sending).
   * Settable after start because the receiving service may learn its own port only once it listens.
   */
  setEventTarget(target: EventTarget | null): void;
  /** Changes this instance's login policy (`GET /v2/settings/login`, and what its login page demands). */
  setLoginSettings(settings: Partial<LoginSettings>): void;
  /** The pending password-reset code of a user, as a test would read it from the mailbox. */
  lastPasswordCode(userId: string): Promise<string | undefined>;
  /** Changes this instance's password complexity policy (`GET /v2/settings/password/complexity`). */
  setPasswordComplexity(settings: Partial<PasswordComplexity>): void;
  /** Tests: the user's pending email and password-reset codes expire now. */
  expireCodes(userId: string): Promise<void>;
  /**
   * A machine user (another service's account) with client credentials: `client_id` is its username, the
   * secret is generated. Its token type is Zitadel's "Bearer" (opaque, the default) or "JWT".
   */
  addMachineUser(user: MachineUser): Promise<{ userId: string; clientId: string; clientSecret: string }>;
  /** Deactivates (false) or reactivates (true) a machine user: its tokens stop or start being active. */
  setMachineUserActive(userId: string, active: boolean): Promise<void>;
}

export interface MachineUser {
  username: string;
  accessTokenType?: 'bearer' | 'jwt';
  /** Its roles in the project. */
  roles?: string[];
}

/** Fixed so that a restarted provider keeps naming the same organisation and project. */
export const DEFAULT_ORG_ID = '300000000000000001';
export const DEFAULT_PROJECT_ID = '300000000000000002';
const ORG_NAME = 'Development';
const ORG_DOMAIN = 'dev-idp.localhost';
const PROJECT_NAME = 'users-api';
const ADMIN_ROLE = 'admin';
const PAT_SETTING = 'service_account_token';

const absoluteUrl = z
  .url({ protocol: /^https?$/ })
  .refine((u) => !u.includes('#'), 'must not contain a fragment');

/** Zitadel's ids are numeric strings. */
const zitadelId = z.string().regex(/^\d{1,30}$/, 'must be a numeric string');

const optionsSchema = z.object({
  /** A PostgreSQL database; all state goes to schema `dev_idp`, created on start. */
  databaseUrl: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
  /** Only loopback addresses are accepted. */
  host: z.string().min(1).default('127.0.0.1'),
  /** 0: the OS picks a free port. */
  port: z.number().int().min(0).max(65535).default(0),
  /** The issuer; default `http://${host}:${actualPort}`. */
  publicUrl: absoluteUrl.optional(),
  orgId: zitadelId.default(DEFAULT_ORG_ID),
  projectId: zitadelId.default(DEFAULT_PROJECT_ID),
  /** The OIDC applications. */
  clients: z
    .array(
      z.object({
        clientId: z.string().min(1).max(200),
        clientSecret: z.string().min(1).max(500).optional(),
        redirectUris: z.array(absoluteUrl).min(1),
        postLogoutRedirectUris: z.array(absoluteUrl).default([]),
      }),
    )
    .refine(
      (clients) => new Set(clients.map((c) => c.clientId)).size === clients.length,
      'clientIds must be unique',
    ),
  /** API apps (Zitadel's "API" application type, client secret): they may introspect tokens, no redirects. */
  apiApps: z
    .array(z.object({ clientId: z.string().min(1).max(200), clientSecret: z.string().min(16).max(500) }))
    .default([]),
  /**
   * The first administrator: created (with project role 'admin') only when no user has that email yet.
   * With `resetPassword`, an existing admin's password is replaced by `password`.
   */
  admin: z
    .object({
      email: z.string().regex(/^[^\s@]+@[^\s@]+$/, 'must be an email address'),
      password: z.string().optional(),
      username: z.string().min(1).max(200).optional(),
      resetPassword: z.boolean().optional(),
    })
    .optional(),
  /** The PAT Zitadel's APIs demand; default: generated once and kept in dev_idp. */
  serviceAccountToken: z.string().min(16, 'must be at least 16 characters').optional(),
});

/** The provider signs tokens for whoever can reach it; it must never listen beyond this machine. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(\.\d{1,3}){3}$/.test(host);
}

export async function startDevIdentityProvider(
  options: DevIdentityProviderOptions,
): Promise<DevIdentityProvider> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`dev-idp: invalid option ${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  const config = parsed.data;
  if (!isLoopback(config.host))
    throw new Error(`dev-idp: host must be a loopback address, not ${config.host}`);
  if (config.admin?.password !== undefined) {
    try {
      checkPasswordPolicy(config.admin.password);
    } catch (error) {
      throw new Error(
        `dev-idp: the admin password breaks the password policy: ${(error as ZitadelError).text}`,
        { cause: error },
      );
    }
  }
  const logger: Logger = options.logger ?? console;

  const store = await Store.open(config.databaseUrl, (msg) => logger.warn(msg));
  let app: FastifyInstance | undefined;
  try {
    const { signer, serviceAccountToken, admin } = await store.lockedTransaction(async (client) => {
      const signer = await TokenSigner.loadOrCreate(client);
      // The configured organization, created when missing (a rename is not applied).
      await store.insertOrganization(client, ORG_NAME, config.orgId);
      const token =
        config.serviceAccountToken ??
        (await store.setting(client, PAT_SETTING, randomBytes(48).toString('base64url')));
      const admin = config.admin
        ? await ensureAdmin(store, client, config.admin, config.orgId, config.projectId, logger)
        : undefined;
      await store.purgeExpired(client);
      return { signer, serviceAccountToken: token, admin };
    });

    let issuer = config.publicUrl?.replace(/\/+$/, '') ?? '';
    const ctx: IdpContext = {
      store,
      signer,
      issuer: () => issuer,
      orgId: config.orgId,
      orgDomain: ORG_DOMAIN,
      projectId: config.projectId,
      projectName: PROJECT_NAME,
      clients: new Map<string, ClientConfig>(
        [
          ...config.clients,
          ...config.apiApps.map((app) => ({ ...app, redirectUris: [], postLogoutRedirectUris: [] })),
        ].map((client): [string, ClientConfig] => [client.clientId, client]),
      ),
      serviceAccountToken,
      emailCodeSink: options.emailCodeSink,
      passwordCodeSink: options.passwordCodeSink,
      logger,
      events: new EventDispatcher(logger),
      loginSettings: {
        allowUsernamePassword: true,
        forceMfa: false,
        forceMfaLocalOnly: false,
        ...options.loginSettings,
      },
      passwordComplexity: { ...DEFAULT_PASSWORD_COMPLEXITY },
    };
    if (options.eventTarget) ctx.events.setTarget(options.eventTarget);

    app = buildServer(ctx);
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const hostForUrl =
      config.host.includes(':') && !config.host.startsWith('[') ? `[${config.host}]` : config.host;
    const url = `http://${hostForUrl}:${port}`;
    if (!issuer) issuer = url;

    const server = app;
    let closing: Promise<void> | undefined;
    return {
      url,
      issuer,
      serviceAccountToken,
      orgId: config.orgId,
      projectId: config.projectId,
      admin,
      close: () => {
        closing ??= ctx.events
          .close()
          .then(() => server.close())
          .then(() => store.close());
        return closing;
      },
      lastEmailCode: async (userId) => (await store.getCode(store.pool, 'email', userId))?.code,
      setEventTarget: (target) => ctx.events.setTarget(target),
      setLoginSettings: (settings) => {
        ctx.loginSettings = { ...ctx.loginSettings, ...settings };
      },
      lastPasswordCode: async (userId) => (await store.getCode(store.pool, 'password', userId))?.code,
      setPasswordComplexity: (settings) => {
        ctx.passwordComplexity = { ...ctx.passwordComplexity, ...settings };
      },
      expireCodes: (userId) => store.expireCodes(store.pool, userId),
      addMachineUser: async (user) => {
        const clientSecret = randomBytes(32).toString('base64url');
        const row = await store.insertMachineUser(store.pool, {
          username: user.username,
          secret: clientSecret,
          accessTokenType: user.accessTokenType ?? 'bearer',
          roleKeys: user.roles ?? [],
        });
        return { userId: row.id, clientId: row.username, clientSecret };
      },
      setMachineUserActive: (userId, active) =>
        store.setMachineUserState(store.pool, userId, active ? 'USER_STATE_ACTIVE' : 'USER_STATE_INACTIVE'),
    };
  } catch (error) {
    await app?.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
}

function buildServer(ctx: IdpContext): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1_048_576, forceCloseConnections: true });

  app.addHook('onSend', async (_request, reply) => {
    void reply.header('X-Dev-Identity-Provider', 'not-for-production');
  });

  // Unknown paths answer as Zitadel's gateway does.
  app.setNotFoundHandler((_request, reply) =>
    reply.code(404).send({ code: 5, message: 'Not Found', details: [] }),
  );

  void app.register(async (oidc) => {
    useOAuthErrors(oidc, ctx.logger);
    await oidc.register(formbody);
    registerOidcRoutes(oidc, ctx);
  });
  // Zitadel's services over Connect, from its own descriptors (a scope of their own, with Connect's parsers).
  registerConnectServices(app, ctx);
  return app;
}

/**
 * What start-up did with the configured admin: `created` (with the generated password when none was
 * configured), `existing` with whether the configured password is the admin's (undefined: none configured),
 * or `password_reset`.
 */
export type AdminOutcome =
  | { email: string; userId: string; outcome: 'created'; generatedPassword?: string }
  | { email: string; userId: string; outcome: 'existing'; passwordMatches?: boolean }
  | { email: string; userId: string; outcome: 'password_reset' };

/** The first administrator, created in the schema's locked transaction so parallel starts create one. */
async function ensureAdmin(
  store: Store,
  client: Queryable,
  admin: { email: string; password?: string; username?: string; resetPassword?: boolean },
  orgId: string,
  projectId: string,
  logger: Logger,
): Promise<AdminOutcome> {
  const existing = await store.findUserByEmail(client, admin.email);
  if (existing) {
    const base = { email: admin.email, userId: existing.id };
    if (admin.password === undefined) return { ...base, outcome: 'existing' };
    if (admin.resetPassword) {
      await store.updateUser(client, existing.id, {
        password_hash: await hashPassword(admin.password),
        password_change_required: false,
        failed_password_attempts: 0,
      });
      logger.log(`dev-idp: reset the password of admin ${admin.email} to the configured one`);
      return { ...base, outcome: 'password_reset' };
    }
    const matches =
      !!existing.password_hash && (await passwordMatches(existing.password_hash, admin.password));
    return { ...base, outcome: 'existing', passwordMatches: matches };
  }
  const password = admin.password ?? generatePassword();
  const user = await store.insertUser(client, orgId, {
    username: admin.username ?? admin.email,
    email: admin.email,
    email_verified: true,
    given_name: 'Admin',
    family_name: 'User',
    nick_name: '',
    display_name: 'Admin User',
    preferred_language: 'en',
    state: 'USER_STATE_ACTIVE',
    password_hash: await hashPassword(password),
    password_change_required: false,
    failed_password_attempts: 0,
  });
  await store.insertGrant(client, { userId: user.id, projectId, orgId, roleKeys: [ADMIN_ROLE] });
  logger.log(
    admin.password === undefined
      ? `dev-idp: created admin ${admin.email} (user ${user.id}) with generated password: ${password}`
      : `dev-idp: created admin ${admin.email} (user ${user.id})`,
  );
  return admin.password === undefined
    ? { email: admin.email, userId: user.id, outcome: 'created', generatedPassword: password }
    : { email: admin.email, userId: user.id, outcome: 'created' };
}
