/**
 * The bare baseline: plain Fastify + pg doing the same SQL and the same JWT verification as users-api, with
 * no framework, validation layer, guard or serializer of ours. It is the practical ceiling on this stack;
 * the benchmark reports users-api as a fraction of it.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import jwt, { type JwtPayload } from 'jsonwebtoken';
import pg from 'pg';
import { sessionSigningKey } from '../src/auth/session-signing-key.js';

// The service's key and algorithm: an HS256 secret, or a PEM key pair (ES256/RS256) as a KeyObject.
const { verificationKey, algorithm } = sessionSigningKey(process.env.SESSION_SIGNING_KEY!);
// Cursors as the service signs them (src/common/http/cursor-signer.ts): HMAC-SHA256 with a key derived
// from the session signing key.
const cursorKey = Buffer.from(
  hkdfSync('sha256', process.env.SESSION_SIGNING_KEY!, '', 'users-api list cursors v1', 32),
);
const cursorMac = (body: string) => createHmac('sha256', cursorKey).update(body).digest();
const signCursor = (payload: string) => {
  const body = Buffer.from(payload).toString('base64url');
  return `${body}.${cursorMac(body).toString('base64url')}`;
};
function verifyCursor(cursor: string): string | undefined {
  const [body, mac] = cursor.split('.');
  const given = Buffer.from(mac ?? '', 'base64url');
  if (!body || given.length !== 32 || !timingSafeEqual(given, cursorMac(body))) return undefined;
  return Buffer.from(body, 'base64url').toString();
}
// The service's pool settings: the same size and the same server-side statement timeout.
const pool = new pg.Pool({
  connectionString: process.env.DATABASE_URL,
  max: Number(process.env.DB_POOL_MAX ?? 10),
  options: '-c statement_timeout=10000',
});
const app = Fastify({ logger: false });

const SEARCH_COUNT_LIMIT = 1000;
const SEARCH = 'u.search_text';
const SORTS: Record<string, string> = {
  created_at: 'u.created_at',
  username: 'u.username',
  email: 'u.email',
};

interface UserRow {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  avatar_url: string | null;
  status: string;
  roles: string[];
  created_at: Date;
  last_login: Date | null;
  cursor_value: string;
}

interface Session {
  user_id: string;
  roles: string[];
  org_id: string;
}

async function authenticate(authorization: string | undefined): Promise<Session | null> {
  const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
  if (!token) return null;
  let claims: JwtPayload;
  try {
    claims = jwt.verify(token, verificationKey, {
      algorithms: [algorithm],
      issuer: process.env.SESSION_ISSUER ?? 'users-api',
      audience: process.env.SESSION_AUDIENCE ?? 'users-api',
    }) as JwtPayload;
  } catch {
    return null;
  }
  const { rows } = await pool.query<Session>(
    `SELECT s.id AS session_id, s.last_activity, s.bot_id, u.id AS user_id, u.zitadel_id, u.roles, u.org_id
     FROM sessions s INNER JOIN users u ON u.id = s.user_id
     WHERE s.id = $1 AND s.user_id = $2 AND s.status = 'active' AND s.expires_at > now() AND u.status = 'active'`,
    [claims.sid, claims.sub],
  );
  return rows[0] ?? null;
}

app.get('/api/users/me', async (request, reply) => {
  const session = await authenticate(request.headers.authorization);
  if (!session) return reply.code(401).send({ error: 'unauthorized' });
  // The service's FIND_BY_ID_SQL columns.
  const { rows } = await pool.query<UserRow>(
    `SELECT id, zitadel_id, username, email, display_name, avatar_url, status, roles, last_login,
            suspension_reason, suspended_at, suspended_until, deleted_at, created_at, updated_at, version
     FROM users WHERE id = $1 AND status <> 'deleted'`,
    [session.user_id],
  );
  const u = rows[0];
  return {
    user_id: u.id,
    username: u.username,
    email: u.email,
    display_name: u.display_name,
    avatar_url: u.avatar_url ?? `/api/users/${u.id}/avatar`,
    roles: u.roles,
    created_at: u.created_at,
    last_login: u.last_login,
  };
});

app.get('/api/users', async (request, reply) => {
  const session = await authenticate(request.headers.authorization);
  if (!session) return reply.code(401).send({ error: 'unauthorized' });
  if (!session.roles.includes('admin')) return reply.code(403).send({ error: 'forbidden' });
  const q = request.query as Record<string, string | undefined>;
  const limit = Number(q.limit ?? 50);
  const offset = Number(q.offset ?? 0);
  const where = [q.status ? `u.status = $1` : `u.status <> 'deleted' AND $1::text IS NULL`];
  const params: unknown[] = [q.status ?? null];
  // As the service: an organization admin lists their own organization.
  where.push(`u.org_id = $${params.push(session.org_id)}`);
  if (q.role) where.push(`u.roles @> ARRAY[$${params.push(q.role)}]::text[]`);
  if (q.search) where.push(`${SEARCH} LIKE $${params.push(`%${q.search.toLowerCase()}%`)}`);
  const sort = q.sort ?? 'created_at';
  const column = SORTS[sort.replace(/^-/, '')];
  const direction = sort.startsWith('-') ? 'DESC' : 'ASC';
  const pageWhere = [...where];
  const pageParams = [...params];
  if (q.cursor) {
    const payload = verifyCursor(q.cursor);
    if (payload === undefined) return reply.status(400).send({ error: 'invalid_request' });
    const [, value, id] = JSON.parse(payload) as string[];
    pageWhere.push(
      `(${column}, u.id) ${direction === 'DESC' ? '<' : '>'} ($${pageParams.push(value)}, $${pageParams.push(id)})`,
    );
  }
  // As the service: a search is counted up to its limit; without one the total comes from the
  // trigger-kept counters.
  const counted = q.search
    ? pool.query<{ total: number }>(
        `SELECT count(*)::int AS total FROM (SELECT 1 FROM users u WHERE ${where.join(' AND ')} LIMIT ${SEARCH_COUNT_LIMIT + 1}) AS matches`,
        params,
      )
    : pool.query<{ total: number }>(
        `SELECT coalesce(sum(n), 0)::int AS total FROM user_counts
         WHERE org_id = $3 AND role = $1 AND (status = $2 OR ($2::text IS NULL AND status <> 'deleted'))`,
        [q.role ?? '*', q.status ?? null, session.org_id],
      );
  const [count, page] = await Promise.all([
    counted,
    pool.query<UserRow>(
      `SELECT u.id, u.username, u.email, u.display_name, u.status, u.roles, u.created_at,
              ${column}::text AS cursor_value FROM users u WHERE ${pageWhere.join(' AND ')}
       ORDER BY ${column} ${direction}, u.id ${direction} OFFSET ${offset} LIMIT ${limit + 1}`,
      pageParams,
    ),
  ]);
  const users = page.rows.slice(0, limit);
  const last = users.at(-1);
  return {
    users: users.map((u) => ({
      user_id: u.id,
      username: u.username,
      email: u.email,
      display_name: u.display_name,
      status: u.status,
      roles: u.roles,
      created_at: u.created_at,
    })),
    total: q.search ? Math.min(count.rows[0].total, SEARCH_COUNT_LIMIT) : count.rows[0].total,
    total_exact: !q.search || count.rows[0].total <= SEARCH_COUNT_LIMIT,
    limit,
    offset,
    next_cursor:
      page.rows.length > limit && last
        ? signCursor(JSON.stringify([sort, last.cursor_value, last.id]))
        : null,
  };
});

app.put('/api/users/:id/settings', async (request, reply) => {
  const session = await authenticate(request.headers.authorization);
  if (!session) return reply.code(401).send({ error: 'unauthorized' });
  const { id } = request.params as { id: string };
  if (id !== session.user_id && !session.roles.includes('admin'))
    return reply.code(403).send({ error: 'forbidden' });
  const body = request.body as Record<string, unknown>;
  const exists = await pool.query(`SELECT 1 FROM users WHERE id = $1 AND status <> 'deleted'`, [id]);
  if (!exists.rowCount) return reply.code(404).send({ error: 'user_not_found' });
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // The same serialization and read-before-write as SettingsService.update.
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('user_settings:' || $1, 0))`, [id]);
    await client.query(`SELECT * FROM user_settings WHERE user_id = $1`, [id]);
    for (const [key, value] of Object.entries(body)) {
      await client.query(
        `INSERT INTO user_settings (user_id, setting_key, setting_value) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, setting_key) DO UPDATE SET setting_value = EXCLUDED.setting_value, updated_at = now()`,
        [id, key, JSON.stringify(value)],
      );
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
  return { status: 'updated', settings: body };
});

await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3100) });
process.on(
  'SIGTERM',
  () =>
    void app
      .close()
      .then(() => pool.end())
      .then(() => process.exit(0)),
);
