import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sameSecret } from './api-auth.js';
import type { IdpContext } from './context.js';
import { assertUserCanSignIn, checkUserPassword } from './credentials.js';
import { invalidArgument, notFound, parseInput, permissionDenied } from './errors.js';
import { details, presentSession } from './presenters.js';
import { type SessionRow, type Store, type UserRow, sha256 } from './store.js';
import { DEFAULT_LIMIT, MAX_LIMIT, uint64 } from './user-query.js';

/** A protobuf Duration in JSON: seconds with an optional fraction and an `s`, e.g. "18000s". */
const duration = z
  .string()
  .regex(/^\d{1,10}(\.\d{1,9})?s$/, 'must be a duration such as "18000s"')
  .transform((value) => Number(value.slice(0, -1)))
  .refine((seconds) => seconds > 0, 'must be positive');

const createSessionRequest = z.object({
  checks: z
    .object({
      user: z
        .object({
          loginName: z.string().min(1).max(200).optional(),
          userId: z.string().min(1).max(200).optional(),
        })
        .refine(
          (u) => (u.loginName === undefined) !== (u.userId === undefined),
          'set exactly one of loginName, userId',
        )
        .optional(),
      password: z.object({ password: z.string().min(1).max(200) }).optional(),
    })
    .optional(),
  metadata: z.record(z.string(), z.string()).optional(),
  userAgent: z
    .object({
      fingerprintId: z.string().max(200).optional(),
      ip: z.string().max(100).optional(),
      description: z.string().max(500).optional(),
      header: z.record(z.string(), z.object({ values: z.array(z.string().max(2000)).max(20) })).optional(),
    })
    .optional(),
  lifetime: duration.optional(),
});

const sessionIdParam = z.object({ sessionId: z.string().min(1).max(200) });
const getSessionQuery = z.object({ sessionToken: z.string().max(500).optional() });
const deleteSessionRequest = z.object({ sessionToken: z.string().max(500).optional() });

const listSessionsRequest = z.object({
  query: z
    .object({ offset: uint64.optional(), limit: uint64.optional(), asc: z.boolean().optional() })
    .optional(),
  queries: z
    .array(
      z
        .object({
          idsQuery: z.object({ ids: z.array(z.string().max(200)).max(1000) }).optional(),
          userIdQuery: z.object({ id: z.string().max(200) }).optional(),
        })
        .refine((q) => Object.values(q).filter((v) => v !== undefined).length === 1, {
          message: 'each query must set exactly one supported query kind (idsQuery, userIdQuery)',
        }),
    )
    .max(20)
    .optional(),
});

function sessionNotFound(): Error {
  return notFound('QUERY-SFeaa', 'Session not found');
}

async function resolveUser(store: Store, check: { loginName?: string; userId?: string }): Promise<UserRow> {
  const user = check.userId
    ? await store.getUser(store.pool, check.userId)
    : await store.findUserByLoginName(store.pool, check.loginName ?? '');
  if (!user) throw notFound('QUERY-Dfbg2', 'User could not be found');
  return user;
}

/** zitadel.session.v2.SessionService over its REST mapping (`/v2/sessions…`). */
export function registerSessionRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store } = ctx;

  const present = async (session: SessionRow) => {
    const user = await store.getUser(store.pool, session.user_id);
    return user ? presentSession(session, user) : undefined;
  };

  app.post('/v2/sessions', async (request, reply) => {
    const body = parseInput(createSessionRequest, request.body, 'CreateSessionRequest');
    const userCheck = body.checks?.user;
    if (!userCheck) {
      throw invalidArgument('DEVIDP-VALID', 'invalid CreateSessionRequest: checks.user is required');
    }
    const user = await resolveUser(store, userCheck);
    assertUserCanSignIn(user);
    // Outside a transaction on purpose: a failed check must still count against the lockout limit.
    if (body.checks?.password)
      await checkUserPassword(store, store.pool, user, body.checks.password.password, ctx.events);
    const token = randomBytes(32).toString('base64url');
    const session = await store.insertSession(store.pool, {
      userId: user.id,
      token,
      passwordChecked: body.checks?.password !== undefined,
      userAgent: body.userAgent,
      lifetimeSeconds: body.lifetime,
    });
    return reply.code(201).send({
      details: details(session, user.org_id),
      sessionId: session.id,
      sessionToken: token,
    });
  });

  app.post('/v2/sessions/search', async (request) => {
    const body = parseInput(listSessionsRequest, request.body, 'ListSessionsRequest');
    const values: unknown[] = [];
    const where = (body.queries ?? []).map((q) => {
      if (q.idsQuery) {
        values.push(q.idsQuery.ids);
        return `id = ANY($${values.length}::text[])`;
      }
      values.push(q.userIdQuery?.id ?? '');
      return `user_id = $${values.length}`;
    });
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const direction = body.query?.asc ? 'ASC' : 'DESC';
    const limit = Math.min(body.query?.limit || DEFAULT_LIMIT, MAX_LIMIT);
    const [rows, count] = await Promise.all([
      store.pool.query<SessionRow>(
        `SELECT * FROM dev_idp.sessions ${whereSql} ORDER BY created_at ${direction}, id ${direction}
          LIMIT $${values.length + 1} OFFSET $${values.length + 2}`,
        [...values, limit, body.query?.offset ?? 0],
      ),
      store.pool.query<{ total: string }>(
        `SELECT count(*)::text AS total FROM dev_idp.sessions ${whereSql}`,
        values,
      ),
    ]);
    const sessions = await Promise.all(rows.rows.map(present));
    return {
      details: { totalResult: count.rows[0]?.total ?? '0', timestamp: new Date().toISOString() },
      sessions: sessions.filter((s) => s !== undefined),
    };
  });

  app.get('/v2/sessions/:sessionId', async (request) => {
    const { sessionId } = parseInput(sessionIdParam, request.params, 'GetSessionRequest');
    const { sessionToken } = parseInput(getSessionQuery, request.query, 'GetSessionRequest');
    const session = await store.getSession(store.pool, sessionId);
    if (!session) throw sessionNotFound();
    if (sessionToken !== undefined && !sameSecret(sha256(sessionToken), session.token_hash)) {
      throw permissionDenied('COMMAND-sGr42', 'Session token is invalid');
    }
    const presented = await present(session);
    if (!presented) throw sessionNotFound();
    return { session: presented };
  });

  app.delete('/v2/sessions/:sessionId', async (request) => {
    const { sessionId } = parseInput(sessionIdParam, request.params, 'DeleteSessionRequest');
    const body = parseInput(deleteSessionRequest, request.body, 'DeleteSessionRequest');
    const session = await store.getSession(store.pool, sessionId);
    if (!session) throw sessionNotFound();
    if (body.sessionToken !== undefined && !sameSecret(sha256(body.sessionToken), session.token_hash)) {
      throw permissionDenied('COMMAND-sGr42', 'Session token is invalid');
    }
    await store.deleteSession(store.pool, sessionId);
    const user = await store.getUser(store.pool, session.user_id);
    return { details: details({ ...session, changed_at: new Date() }, user?.org_id ?? ctx.orgId) };
  });
}
