import { createHash } from 'node:crypto';
import pg from 'pg';
import { alreadyExists } from './errors.js';

/**
 * Everything the development IdP remembers lives in PostgreSQL schema `dev_idp`, so users, grants and
 * signing keys survive restarts exactly as a real Zitadel's would. Nothing here touches another schema.
 */

/** Any constant works; it must differ from the service's own migration lock. */
const SCHEMA_LOCK_KEY = 'users-api:dev-idp:schema';

const SCHEMA_SQL = [
  'CREATE SCHEMA IF NOT EXISTS dev_idp',
  'CREATE SEQUENCE IF NOT EXISTS dev_idp.id_seq',
  // Zitadel ids are 18-digit, time-ordered numeric strings (sonyflake). Milliseconds since 2020-09-13 in the
  // high bits keep that look and ordering; the sequence in the low 22 bits keeps them unique.
  `CREATE OR REPLACE FUNCTION dev_idp.next_id() RETURNS text LANGUAGE sql VOLATILE AS $$
     SELECT (((floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1600000000000) << 22)
             | (nextval('dev_idp.id_seq') & 4194303))::text
   $$`,
  `CREATE TABLE IF NOT EXISTS dev_idp.settings (
     key text PRIMARY KEY,
     value text NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS dev_idp.signing_keys (
     kid text PRIMARY KEY,
     private_key_pem text NOT NULL,
     public_jwk jsonb NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  // Organizations (tenants); the configured one is inserted at every start unless it exists.
  `CREATE TABLE IF NOT EXISTS dev_idp.organizations (
     id text PRIMARY KEY DEFAULT dev_idp.next_id(),
     name text NOT NULL,
     sequence bigint NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     changed_at timestamptz NOT NULL DEFAULT now()
   )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS organizations_name_key ON dev_idp.organizations (lower(name))',
  `CREATE TABLE IF NOT EXISTS dev_idp.users (
     id text PRIMARY KEY DEFAULT dev_idp.next_id(),
     org_id text NOT NULL,
     username text NOT NULL,
     email text NOT NULL,
     email_verified boolean NOT NULL DEFAULT false,
     given_name text NOT NULL,
     family_name text NOT NULL,
     nick_name text NOT NULL DEFAULT '',
     display_name text NOT NULL,
     preferred_language text NOT NULL DEFAULT '',
     state text NOT NULL,
     password_hash text,
     password_change_required boolean NOT NULL DEFAULT false,
     password_changed_at timestamptz,
     failed_password_attempts integer NOT NULL DEFAULT 0,
     sequence bigint NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     changed_at timestamptz NOT NULL DEFAULT now()
   )`,
  'CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON dev_idp.users (lower(username))',
  'CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON dev_idp.users (lower(email))',
  `CREATE TABLE IF NOT EXISTS dev_idp.email_codes (
     user_id text PRIMARY KEY REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     code text NOT NULL,
     expires_at timestamptz NOT NULL
   )`,
  // Wrong guesses of the pending code: at the user service's limit the code is deleted (a new one must be sent).
  'ALTER TABLE dev_idp.email_codes ADD COLUMN IF NOT EXISTS failed_attempts integer NOT NULL DEFAULT 0',
  // The pending password-reset code of a user (PasswordReset), counted like email codes.
  `CREATE TABLE IF NOT EXISTS dev_idp.password_codes (
     user_id text PRIMARY KEY REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     code text NOT NULL,
     expires_at timestamptz NOT NULL,
     failed_attempts integer NOT NULL DEFAULT 0
   )`,
  // One TOTP generator per user, as Zitadel allows; usable for logins once verified.
  `CREATE TABLE IF NOT EXISTS dev_idp.totp_secrets (
     user_id text PRIMARY KEY REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     secret text NOT NULL,
     verified boolean NOT NULL DEFAULT false,
     last_used_step bigint,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS dev_idp.user_grants (
     id text PRIMARY KEY DEFAULT dev_idp.next_id(),
     user_id text NOT NULL REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     project_id text NOT NULL,
     org_id text NOT NULL,
     role_keys text[] NOT NULL,
     state text NOT NULL DEFAULT 'USER_GRANT_STATE_ACTIVE',
     sequence bigint NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     changed_at timestamptz NOT NULL DEFAULT now(),
     UNIQUE (user_id, project_id)
   )`,
  `CREATE TABLE IF NOT EXISTS dev_idp.sessions (
     id text PRIMARY KEY DEFAULT dev_idp.next_id(),
     token_hash text NOT NULL,
     user_id text NOT NULL REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     user_checked_at timestamptz NOT NULL DEFAULT now(),
     password_checked_at timestamptz,
     user_agent jsonb,
     expires_at timestamptz,
     sequence bigint NOT NULL DEFAULT 1,
     created_at timestamptz NOT NULL DEFAULT now(),
     changed_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS dev_idp.auth_codes (
     code_hash text PRIMARY KEY,
     client_id text NOT NULL,
     redirect_uri text NOT NULL,
     code_challenge text NOT NULL,
     nonce text,
     scope text NOT NULL,
     user_id text NOT NULL REFERENCES dev_idp.users (id) ON DELETE CASCADE,
     session_id text,
     auth_time timestamptz NOT NULL,
     expires_at timestamptz NOT NULL,
     used_at timestamptz,
     access_token_jti text
   )`,
  `CREATE TABLE IF NOT EXISTS dev_idp.revoked_tokens (
     jti text PRIMARY KEY,
     expires_at timestamptz NOT NULL
   )`,
  // Machine users (service accounts of other services) with client credentials. Zitadel keeps their role
  // grants as for humans; the stand-in keeps them on the row. access_token_type: 'bearer' (opaque, Zitadel's
  // default) or 'jwt'.
  `CREATE TABLE IF NOT EXISTS dev_idp.machine_users (
     id text PRIMARY KEY DEFAULT dev_idp.next_id(),
     username text NOT NULL UNIQUE,
     secret_hash text NOT NULL,
     access_token_type text NOT NULL,
     role_keys text[] NOT NULL DEFAULT '{}',
     state text NOT NULL DEFAULT 'USER_STATE_ACTIVE',
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  // Opaque access tokens: only their hash is kept, with the claims introspection answers.
  `CREATE TABLE IF NOT EXISTS dev_idp.opaque_tokens (
     token_hash text PRIMARY KEY,
     jti text NOT NULL,
     claims jsonb NOT NULL,
     expires_at timestamptz NOT NULL
   )`,
];

/** Every row of an aggregate Zitadel versions: its event sequence, creation and last change. */
export interface Versioned {
  /** bigint: pg hands it over as a string, which is also how Zitadel's JSON carries uint64. */
  sequence: string;
  created_at: Date;
  changed_at: Date;
}

export interface OrganizationRow extends Versioned {
  id: string;
  name: string;
}

export interface MachineUserRow {
  id: string;
  username: string;
  secret_hash: string;
  access_token_type: 'bearer' | 'jwt';
  role_keys: string[];
  state: UserState;
}

export type UserState =
  'USER_STATE_ACTIVE' | 'USER_STATE_INACTIVE' | 'USER_STATE_LOCKED' | 'USER_STATE_INITIAL';

export interface UserRow extends Versioned {
  id: string;
  org_id: string;
  username: string;
  email: string;
  email_verified: boolean;
  given_name: string;
  family_name: string;
  nick_name: string;
  display_name: string;
  preferred_language: string;
  state: UserState;
  password_hash: string | null;
  password_change_required: boolean;
  password_changed_at: Date | null;
  failed_password_attempts: number;
}

export interface TotpRow {
  user_id: string;
  /** Base32, as authenticator apps take it. */
  secret: string;
  verified: boolean;
  /** The last 30-second step a code was accepted for: each code works once. */
  last_used_step: string | null;
  created_at: Date;
}

export interface GrantRow extends Versioned {
  id: string;
  user_id: string;
  project_id: string;
  org_id: string;
  role_keys: string[];
  state: 'USER_GRANT_STATE_ACTIVE' | 'USER_GRANT_STATE_INACTIVE';
}

export interface SessionRow extends Versioned {
  id: string;
  token_hash: string;
  user_id: string;
  user_checked_at: Date;
  password_checked_at: Date | null;
  user_agent: unknown;
  expires_at: Date | null;
}

export interface AuthCodeRow {
  code_hash: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  nonce: string | null;
  scope: string;
  user_id: string;
  session_id: string | null;
  auth_time: Date;
  expires_at: Date;
  used_at: Date | null;
  access_token_jti: string | null;
}

/** The user columns a caller may set; everything else is the store's to manage. */
const USER_FIELD_COLUMNS = [
  'username',
  'email',
  'email_verified',
  'given_name',
  'family_name',
  'nick_name',
  'display_name',
  'preferred_language',
  'state',
  'password_hash',
  'password_change_required',
  'failed_password_attempts',
] as const satisfies readonly (keyof UserRow)[];
export type UserFields = Pick<UserRow, (typeof USER_FIELD_COLUMNS)[number]>;
const USER_COLUMNS = new Set<string>(USER_FIELD_COLUMNS);

export type Queryable = pg.Pool | pg.PoolClient;

/** The kinds of one-time code a user may have pending, and their tables. */
export type CodeKind = 'email' | 'password';
const CODE_TABLES: Record<CodeKind, string> = {
  email: 'dev_idp.email_codes',
  password: 'dev_idp.password_codes',
};

/** base64url(SHA-256): how secrets (session tokens, codes) are stored, and PKCE's S256 challenge. */
export function sha256(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

/** The first row a statement returns, or undefined when it returns none. */
async function first<T extends pg.QueryResultRow>(
  db: Queryable,
  text: string,
  values?: unknown[],
): Promise<T | undefined> {
  return (await db.query<T>(text, values)).rows[0];
}

/** A write to dev_idp.users: a taken username or email (unique violation) is Zitadel's AlreadyExists. */
async function uniqueUser<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (error) {
    if (error instanceof pg.DatabaseError && error.code === '23505')
      throw alreadyExists('V3-DKcAT', 'User already exists');
    throw error;
  }
}

export class Store {
  private constructor(readonly pool: pg.Pool) {}

  static async open(databaseUrl: string, onError: (message: string) => void): Promise<Store> {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 4, idleTimeoutMillis: 10_000 });
    // An idle client losing its connection must not crash the host process.
    pool.on('error', (error) => onError(`dev-idp: idle database connection failed: ${error.message}`));
    const store = new Store(pool);
    try {
      await store.lockedTransaction(async (client) => {
        for (const statement of SCHEMA_SQL) await client.query(statement);
      });
    } catch (error) {
      await pool.end();
      throw error;
    }
    return store;
  }

  close(): Promise<void> {
    return this.pool.end();
  }

  async transaction<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await run(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * A transaction serialized against every other dev-idp instance on this database (several test files
   * start one each, at once): CREATE ... IF NOT EXISTS alone still races on the catalog.
   */
  lockedTransaction<T>(run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [SCHEMA_LOCK_KEY]);
      return run(client);
    });
  }

  // --- settings ---

  /** The setting's value; `initial` is stored first when the key has none (the no-op update returns it). */
  async setting(db: Queryable, key: string, initial: string): Promise<string> {
    const row = await first<{ value: string }>(
      db,
      `INSERT INTO dev_idp.settings (key, value) VALUES ($1, $2)
       ON CONFLICT (key) DO UPDATE SET value = dev_idp.settings.value RETURNING value`,
      [key, initial],
    );
    return row!.value;
  }

  // --- organizations ---

  /** undefined when the id or (case-insensitively) the name is taken: Zitadel refuses an org's name twice. */
  async insertOrganization(db: Queryable, name: string, id?: string): Promise<OrganizationRow | undefined> {
    return first<OrganizationRow>(
      db,
      `INSERT INTO dev_idp.organizations (id, name) VALUES (coalesce($1, dev_idp.next_id()), $2)
       ON CONFLICT DO NOTHING RETURNING *`,
      [id ?? null, name],
    );
  }

  async getOrganization(db: Queryable, id: string): Promise<OrganizationRow | undefined> {
    return first<OrganizationRow>(db, 'SELECT * FROM dev_idp.organizations WHERE id = $1', [id]);
  }

  // --- users ---

  async insertUser(db: Queryable, orgId: string, fields: UserFields, id?: string): Promise<UserRow> {
    const values = [id ?? null, orgId, ...USER_FIELD_COLUMNS.map((column) => fields[column])];
    const params = USER_FIELD_COLUMNS.map((_column, i) => `$${i + 3}`).join(', ');
    const { rows } = await uniqueUser(
      db.query<UserRow>(
        `INSERT INTO dev_idp.users (id, org_id, ${USER_FIELD_COLUMNS.join(', ')}, password_changed_at)
         VALUES (coalesce($1, dev_idp.next_id()), $2, ${params},
           CASE WHEN $${USER_FIELD_COLUMNS.indexOf('password_hash') + 3}::text IS NULL THEN NULL ELSE now() END)
         RETURNING *`,
        values,
      ),
    );
    return rows[0];
  }

  async getUser(db: Queryable, id: string, forUpdate = false): Promise<UserRow | undefined> {
    return first<UserRow>(db, `SELECT * FROM dev_idp.users WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [
      id,
    ]);
  }

  async findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
    return first<UserRow>(db, 'SELECT * FROM dev_idp.users WHERE lower(email) = lower($1)', [email]);
  }

  /** Zitadel accepts the username or the email as login name; a username match wins. */
  async findUserByLoginName(db: Queryable, loginName: string): Promise<UserRow | undefined> {
    return first<UserRow>(
      db,
      `SELECT * FROM dev_idp.users
        WHERE lower(username) = lower($1) OR lower(email) = lower($1)
        ORDER BY (lower(username) = lower($1)) DESC
        LIMIT 1`,
      [loginName],
    );
  }

  /** Applies a change and bumps the user's sequence, as every Zitadel event does. */
  async updateUser(db: Queryable, id: string, patch: Partial<UserFields>): Promise<UserRow | undefined> {
    const sets: string[] = [];
    const values: unknown[] = [id];
    for (const [column, value] of Object.entries(patch)) {
      if (value === undefined || !USER_COLUMNS.has(column)) continue;
      values.push(value);
      sets.push(`${column} = $${values.length}`);
    }
    if ('password_hash' in patch && patch.password_hash !== undefined)
      sets.push('password_changed_at = now()');
    sets.push('sequence = sequence + 1', 'changed_at = now()');
    return uniqueUser(
      first<UserRow>(db, `UPDATE dev_idp.users SET ${sets.join(', ')} WHERE id = $1 RETURNING *`, values),
    );
  }

  async deleteUser(db: Queryable, id: string): Promise<UserRow | undefined> {
    return first<UserRow>(db, 'DELETE FROM dev_idp.users WHERE id = $1 RETURNING *', [id]);
  }

  /**
   * Counts a failed password check and locks the user once `maxAttempts` consecutive ones are reached;
   * atomic, so parallel guesses cannot slip past the limit. Returns the user as the count left it.
   */
  async recordFailedPassword(db: Queryable, id: string, maxAttempts: number): Promise<UserRow | undefined> {
    return first<UserRow>(
      db,
      `UPDATE dev_idp.users
          SET failed_password_attempts = failed_password_attempts + 1,
              state = CASE WHEN failed_password_attempts + 1 >= $2 THEN 'USER_STATE_LOCKED' ELSE state END,
              sequence = sequence + 1,
              changed_at = now()
        WHERE id = $1
        RETURNING *`,
      [id, maxAttempts],
    );
  }

  async resetFailedPasswords(db: Queryable, id: string): Promise<void> {
    await db.query(
      'UPDATE dev_idp.users SET failed_password_attempts = 0 WHERE id = $1 AND failed_password_attempts <> 0',
      [id],
    );
  }

  // --- one-time codes: email verification and password reset, one pending code of each per user ---

  async putCode(db: Queryable, kind: CodeKind, userId: string, code: string, lifetimeSeconds: number) {
    await db.query(
      `INSERT INTO ${CODE_TABLES[kind]} (user_id, code, expires_at)
       VALUES ($1, $2, now() + make_interval(secs => $3))
       ON CONFLICT (user_id) DO UPDATE SET code = $2, expires_at = now() + make_interval(secs => $3),
         failed_attempts = 0`,
      [userId, code, lifetimeSeconds],
    );
  }

  async getCode(db: Queryable, kind: CodeKind, userId: string) {
    return first<{ code: string; expired: boolean }>(
      db,
      `SELECT code, expires_at <= now() AS expired FROM ${CODE_TABLES[kind]} WHERE user_id = $1`,
      [userId],
    );
  }

  async deleteCode(db: Queryable, kind: CodeKind, userId: string): Promise<void> {
    await db.query(`DELETE FROM ${CODE_TABLES[kind]} WHERE user_id = $1`, [userId]);
  }

  /** Counts a wrong guess of the user's pending code; the guess that reaches `maxAttempts` deletes it. */
  async recordCodeFailure(db: Queryable, kind: CodeKind, userId: string, maxAttempts: number) {
    const row = await first<{ failed_attempts: number }>(
      db,
      `UPDATE ${CODE_TABLES[kind]} SET failed_attempts = failed_attempts + 1 WHERE user_id = $1
       RETURNING failed_attempts`,
      [userId],
    );
    if ((row?.failed_attempts ?? 0) >= maxAttempts) await this.deleteCode(db, kind, userId);
  }

  /** Tests: makes the user's pending email and password codes expire now. */
  async expireCodes(db: Queryable, userId: string): Promise<void> {
    await db.query(`UPDATE dev_idp.email_codes SET expires_at = now() WHERE user_id = $1`, [userId]);
    await db.query(`UPDATE dev_idp.password_codes SET expires_at = now() WHERE user_id = $1`, [userId]);
  }

  // --- TOTP generators ---

  async getTotp(db: Queryable, userId: string): Promise<TotpRow | undefined> {
    return first<TotpRow>(db, 'SELECT * FROM dev_idp.totp_secrets WHERE user_id = $1', [userId]);
  }

  /** A new, unverified generator; replaces an unverified one (registration started again). */
  async putTotp(db: Queryable, userId: string, secret: string): Promise<void> {
    await db.query(
      `INSERT INTO dev_idp.totp_secrets (user_id, secret) VALUES ($1, $2)
       ON CONFLICT (user_id) DO UPDATE SET secret = $2, verified = false, last_used_step = NULL,
         created_at = now()`,
      [userId, secret],
    );
  }

  /**
   * Accepts a code's time step once: marks the generator verified and remembers the step, unless that step
   * (or a later one) was already used. False: a replayed code.
   */
  async useTotpStep(db: Queryable, userId: string, step: number): Promise<boolean> {
    const { rowCount } = await db.query(
      `UPDATE dev_idp.totp_secrets SET verified = true, last_used_step = $2
        WHERE user_id = $1 AND (last_used_step IS NULL OR last_used_step < $2)`,
      [userId, step],
    );
    return (rowCount ?? 0) > 0;
  }

  async deleteTotp(db: Queryable, userId: string): Promise<boolean> {
    const { rowCount } = await db.query('DELETE FROM dev_idp.totp_secrets WHERE user_id = $1', [userId]);
    return (rowCount ?? 0) > 0;
  }

  // --- user grants (role assignments) ---

  async insertGrant(
    db: Queryable,
    grant: { userId: string; projectId: string; orgId: string; roleKeys: string[] },
  ): Promise<GrantRow | undefined> {
    return first<GrantRow>(
      db,
      `INSERT INTO dev_idp.user_grants (user_id, project_id, org_id, role_keys) VALUES ($1, $2, $3, $4)
       ON CONFLICT (user_id, project_id) DO NOTHING
       RETURNING *`,
      [grant.userId, grant.projectId, grant.orgId, grant.roleKeys],
    );
  }

  async getGrantById(db: Queryable, grantId: string): Promise<GrantRow | undefined> {
    return first<GrantRow>(db, 'SELECT * FROM dev_idp.user_grants WHERE id = $1', [grantId]);
  }

  async updateGrant(
    db: Queryable,
    grantId: string,
    patch: { roleKeys?: string[]; state?: GrantRow['state'] },
  ) {
    return first<GrantRow>(
      db,
      `UPDATE dev_idp.user_grants
          SET role_keys = coalesce($2, role_keys), state = coalesce($3, state),
              sequence = sequence + 1, changed_at = now()
        WHERE id = $1
        RETURNING *`,
      [grantId, patch.roleKeys ?? null, patch.state ?? null],
    );
  }

  async deleteGrant(db: Queryable, grantId: string): Promise<GrantRow | undefined> {
    return first<GrantRow>(db, 'DELETE FROM dev_idp.user_grants WHERE id = $1 RETURNING *', [grantId]);
  }

  /** The roles that reach tokens: only active grants on the given project. */
  async activeRoles(db: Queryable, userId: string, projectId: string): Promise<string[]> {
    const { rows } = await db.query<{ role_keys: string[] }>(
      `SELECT role_keys FROM dev_idp.user_grants
        WHERE user_id = $1 AND project_id = $2 AND state = 'USER_GRANT_STATE_ACTIVE'`,
      [userId, projectId],
    );
    return [...new Set(rows.flatMap((row) => row.role_keys))].sort();
  }

  // --- sessions ---

  async insertSession(
    db: Queryable,
    session: {
      userId: string;
      token: string;
      passwordChecked: boolean;
      userAgent?: unknown;
      lifetimeSeconds?: number;
    },
  ): Promise<SessionRow> {
    const { rows } = await db.query<SessionRow>(
      `INSERT INTO dev_idp.sessions (token_hash, user_id, password_checked_at, user_agent, expires_at)
       VALUES ($1, $2, CASE WHEN $3 THEN now() END, $4,
               CASE WHEN $5::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $5::float8) END)
       RETURNING *`,
      [
        sha256(session.token),
        session.userId,
        session.passwordChecked,
        session.userAgent === undefined ? null : JSON.stringify(session.userAgent),
        session.lifetimeSeconds ?? null,
      ],
    );
    return rows[0];
  }

  async getSession(db: Queryable, id: string): Promise<SessionRow | undefined> {
    return first<SessionRow>(db, 'SELECT * FROM dev_idp.sessions WHERE id = $1', [id]);
  }

  async deleteSession(db: Queryable, id: string): Promise<void> {
    await db.query('DELETE FROM dev_idp.sessions WHERE id = $1', [id]);
  }

  // --- authorization codes ---

  async insertAuthCode(
    db: Queryable,
    code: string,
    row: Omit<AuthCodeRow, 'code_hash' | 'used_at' | 'access_token_jti' | 'expires_at'>,
    lifetimeSeconds: number,
  ): Promise<void> {
    await db.query(
      `INSERT INTO dev_idp.auth_codes (code_hash, client_id, redirect_uri, code_challenge, nonce, scope, user_id,
         session_id, auth_time, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + make_interval(secs => $10))`,
      [
        sha256(code),
        row.client_id,
        row.redirect_uri,
        row.code_challenge,
        row.nonce,
        row.scope,
        row.user_id,
        row.session_id,
        row.auth_time,
        lifetimeSeconds,
      ],
    );
  }

  /**
   * Marks a code used in the same statement that reads it, so two concurrent exchanges cannot both win.
   * `reused` tells a replay apart from a code that never existed.
   */
  async consumeAuthCode(
    db: Queryable,
    code: string,
  ): Promise<{ row: AuthCodeRow; expired: boolean } | { reused: AuthCodeRow } | undefined> {
    const hash = sha256(code);
    const consumed = await first<AuthCodeRow & { expired: boolean }>(
      db,
      `UPDATE dev_idp.auth_codes SET used_at = now()
        WHERE code_hash = $1 AND used_at IS NULL
        RETURNING *, expires_at <= now() AS expired`,
      [hash],
    );
    if (consumed) {
      const { expired, ...row } = consumed;
      return { row, expired };
    }
    const used = await first<AuthCodeRow>(db, 'SELECT * FROM dev_idp.auth_codes WHERE code_hash = $1', [
      hash,
    ]);
    return used ? { reused: used } : undefined;
  }

  async setAuthCodeToken(db: Queryable, code: string, jti: string): Promise<void> {
    await db.query('UPDATE dev_idp.auth_codes SET access_token_jti = $2 WHERE code_hash = $1', [
      sha256(code),
      jti,
    ]);
  }

  // --- revoked access tokens ---

  async insertMachineUser(
    db: Queryable,
    user: { username: string; secret: string; accessTokenType: 'bearer' | 'jwt'; roleKeys: string[] },
  ): Promise<MachineUserRow> {
    const { rows } = await db.query<MachineUserRow>(
      `INSERT INTO dev_idp.machine_users (username, secret_hash, access_token_type, role_keys)
       VALUES ($1, $2, $3, $4) RETURNING *`,
      [user.username, sha256(user.secret), user.accessTokenType, user.roleKeys],
    );
    return rows[0];
  }

  async getMachineUser(
    db: Queryable,
    by: { id: string } | { username: string },
  ): Promise<MachineUserRow | undefined> {
    return first<MachineUserRow>(
      db,
      `SELECT * FROM dev_idp.machine_users WHERE ${'id' in by ? 'id' : 'username'} = $1`,
      ['id' in by ? by.id : by.username],
    );
  }

  async setMachineUserState(db: Queryable, id: string, state: UserState): Promise<void> {
    await db.query('UPDATE dev_idp.machine_users SET state = $2 WHERE id = $1', [id, state]);
  }

  async insertOpaqueToken(
    db: Queryable,
    token: string,
    jti: string,
    claims: object,
    expiresAt: Date,
  ): Promise<void> {
    await db.query(
      'INSERT INTO dev_idp.opaque_tokens (token_hash, jti, claims, expires_at) VALUES ($1, $2, $3, $4)',
      [sha256(token), jti, JSON.stringify(claims), expiresAt],
    );
  }

  /** The claims of a live opaque token (not expired), or undefined. */
  async getOpaqueToken(db: Queryable, token: string): Promise<Record<string, unknown> | undefined> {
    const row = await first<{ claims: Record<string, unknown> }>(
      db,
      'SELECT claims FROM dev_idp.opaque_tokens WHERE token_hash = $1 AND expires_at > now()',
      [sha256(token)],
    );
    return row?.claims;
  }

  async revokeToken(db: Queryable, jti: string, expiresAt: Date): Promise<void> {
    await db.query(
      'INSERT INTO dev_idp.revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING',
      [jti, expiresAt],
    );
  }

  async isTokenRevoked(db: Queryable, jti: string): Promise<boolean> {
    const { rowCount } = await db.query('SELECT 1 FROM dev_idp.revoked_tokens WHERE jti = $1', [jti]);
    return (rowCount ?? 0) > 0;
  }

  /** Expired codes and revocations of expired tokens are dead weight; dropped at each start. */
  async purgeExpired(db: Queryable): Promise<void> {
    await db.query("DELETE FROM dev_idp.auth_codes WHERE expires_at < now() - interval '1 hour'");
    await db.query('DELETE FROM dev_idp.revoked_tokens WHERE expires_at < now()');
    await db.query('DELETE FROM dev_idp.opaque_tokens WHERE expires_at < now()');
    await db.query('DELETE FROM dev_idp.sessions WHERE expires_at < now()');
  }
}
