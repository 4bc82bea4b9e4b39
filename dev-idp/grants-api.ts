import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { IdpContext } from './context.js';
import { alreadyExists, failedPrecondition, notFound, parseInput } from './errors.js';
import { details, presentGrant } from './presenters.js';
import type { GrantRow, UserRow } from './store.js';
import { DEFAULT_LIMIT, MAX_LIMIT, Params, textCondition, textMethod, uint64 } from './user-query.js';

/**
 * User grants (role assignments) through Zitadel's management API v1, the REST surface that serves them
 * (`/management/v1/users/grants/_search`, `/management/v1/users/{userId}/grants…`). See README.md for why
 * this API and not the v2 AuthorizationService.
 */

const userIdParam = z.object({ userId: z.string().min(1).max(200) });
const grantParams = z.object({ userId: z.string().min(1).max(200), grantId: z.string().min(1).max(200) });
const roleKeys = z
  .array(z.string().trim().min(1).max(200))
  .max(100)
  .refine((keys) => new Set(keys).size === keys.length, 'role keys must be unique');

const addUserGrantRequest = z.object({
  projectId: z.string().min(1).max(200),
  projectGrantId: z.string().max(200).optional(),
  roleKeys: roleKeys.optional(),
});
const updateUserGrantRequest = z.object({ roleKeys: roleKeys.optional() });

/** zitadel.user.v1.UserGrantQuery (the kinds a service looking up one user's roles needs). */
const userGrantQuery = z
  .object({
    userIdQuery: z.object({ userId: z.string().max(200) }).optional(),
    projectIdQuery: z.object({ projectId: z.string().max(200) }).optional(),
    withGrantedQuery: z.object({ withGranted: z.boolean().optional() }).optional(),
    roleKeyQuery: z.object({ roleKey: z.string().max(200), method: textMethod }).optional(),
    userNameQuery: z.object({ userName: z.string().max(200), method: textMethod }).optional(),
    emailQuery: z.object({ email: z.string().max(200), method: textMethod }).optional(),
  })
  .refine((query) => Object.values(query).filter((v) => v !== undefined).length === 1, {
    message: 'each query must set exactly one supported query kind',
  });

const listUserGrantRequest = z.object({
  query: z
    .object({ offset: uint64.optional(), limit: uint64.optional(), asc: z.boolean().optional() })
    .optional(),
  queries: z.array(userGrantQuery).max(50).optional(),
});

function grantNotFound(): Error {
  return notFound('COMMAND-4M0fs', 'User grant not found');
}

export function registerGrantRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store } = ctx;

  const userOf = async (userId: string): Promise<UserRow> => {
    const user = await store.getUser(store.pool, userId);
    if (!user) throw notFound('QUERY-Dfbg2', 'User could not be found');
    return user;
  };

  app.post('/management/v1/users/grants/_search', async (request) => {
    const body = parseInput(listUserGrantRequest, request.body, 'ListUserGrantRequest');
    const params = new Params();
    // The management API acts in the organization of the x-zitadel-orgid header: grants belong to the
    // organization of their user. Without the header, every organization's (a simplification).
    const orgHeader = request.headers['x-zitadel-orgid'];
    const orgCondition =
      typeof orgHeader === 'string' && orgHeader ? [`g.org_id = ${params.add(orgHeader)}`] : [];
    const queried = (body.queries ?? []).map((q) => {
      if (q.userIdQuery) return `g.user_id = ${params.add(q.userIdQuery.userId)}`;
      if (q.projectIdQuery) return `g.project_id = ${params.add(q.projectIdQuery.projectId)}`;
      if (q.roleKeyQuery) {
        const inner = textCondition('r.key', q.roleKeyQuery.roleKey, q.roleKeyQuery.method, params);
        return `EXISTS (SELECT 1 FROM unnest(g.role_keys) AS r(key) WHERE ${inner})`;
      }
      if (q.userNameQuery)
        return textCondition('u.username', q.userNameQuery.userName, q.userNameQuery.method, params);
      if (q.emailQuery) return textCondition('u.email', q.emailQuery.email, q.emailQuery.method, params);
      // Project grants to other organisations do not exist here, so "with granted" changes nothing.
      return 'TRUE';
    });
    const where = [...orgCondition, ...queried];
    const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const from = 'FROM dev_idp.user_grants g JOIN dev_idp.users u ON u.id = g.user_id';
    const countValues = [...params.values];
    const limit = Math.min(body.query?.limit || DEFAULT_LIMIT, MAX_LIMIT);
    const direction = body.query?.asc ? 'ASC' : 'DESC';
    const [grants, count] = await Promise.all([
      store.pool.query<GrantRow & { user: UserRow }>(
        `SELECT g.*, to_jsonb(u.*) AS user ${from} ${whereSql}
          ORDER BY g.created_at ${direction}, g.id ${direction}
          LIMIT ${params.add(limit)} OFFSET ${params.add(body.query?.offset ?? 0)}`,
        params.values,
      ),
      store.pool.query<{ total: string }>(`SELECT count(*)::text AS total ${from} ${whereSql}`, countValues),
    ]);
    return {
      details: {
        totalResult: count.rows[0]?.total ?? '0',
        processedSequence: '0',
        viewTimestamp: new Date().toISOString(),
      },
      result: grants.rows.map(({ user, ...grant }) => presentGrant(ctx, grant, userFromJson(user))),
    };
  });

  app.post('/management/v1/users/:userId/grants', async (request) => {
    const { userId } = parseInput(userIdParam, request.params, 'AddUserGrantRequest');
    const body = parseInput(addUserGrantRequest, request.body, 'AddUserGrantRequest');
    if (body.projectId !== ctx.projectId) throw failedPrecondition('PROJECT-Bp0lf', 'Project not found');
    if (body.projectGrantId) throw failedPrecondition('PROJECT-0ogcb', 'Project grant not found');
    const user = await store.getUser(store.pool, userId);
    if (!user) throw failedPrecondition('COMMAND-2M9fs', 'User not found');
    const grant = await store.insertGrant(store.pool, {
      userId,
      projectId: body.projectId,
      // A user grant belongs to the user's organization.
      orgId: user.org_id,
      roleKeys: body.roleKeys ?? [],
    });
    if (!grant) throw alreadyExists('COMMAND-2N9ds', 'User grant already exists');
    ctx.events.grantEvent('user.grant.added', grant);
    return { userGrantId: grant.id, details: details(grant, grant.org_id) };
  });

  app.get('/management/v1/users/:userId/grants/:grantId', async (request) => {
    const { userId, grantId } = parseInput(grantParams, request.params, 'GetUserGrantByIDRequest');
    const grant = await store.getGrant(store.pool, userId, grantId);
    if (!grant) throw grantNotFound();
    return { userGrant: presentGrant(ctx, grant, await userOf(userId)) };
  });

  app.put('/management/v1/users/:userId/grants/:grantId', async (request) => {
    const { userId, grantId } = parseInput(grantParams, request.params, 'UpdateUserGrantRequest');
    const body = parseInput(updateUserGrantRequest, request.body, 'UpdateUserGrantRequest');
    const grant = await store.updateGrant(store.pool, userId, grantId, { roleKeys: body.roleKeys ?? [] });
    if (!grant) throw grantNotFound();
    ctx.events.grantEvent('user.grant.changed', grant);
    return { details: details(grant, grant.org_id) };
  });

  app.delete('/management/v1/users/:userId/grants/:grantId', async (request) => {
    const { userId, grantId } = parseInput(grantParams, request.params, 'RemoveUserGrantRequest');
    const grant = await store.deleteGrant(store.pool, userId, grantId);
    if (!grant) throw grantNotFound();
    ctx.events.grantEvent('user.grant.removed', {
      ...grant,
      sequence: String(BigInt(grant.sequence) + 1n),
    });
    return { details: details({ ...grant, changed_at: new Date() }, grant.org_id) };
  });

  const stateChange = (
    path: string,
    from: GrantRow['state'],
    to: GrantRow['state'],
    refusal: [string, string],
    event: string,
  ) => {
    app.post(`/management/v1/users/:userId/grants/:grantId/${path}`, async (request) => {
      const { userId, grantId } = parseInput(grantParams, request.params, 'request');
      const grant = await store.transaction(async (db) => {
        const current = await store.getGrant(db, userId, grantId);
        if (!current) throw grantNotFound();
        if (current.state !== from) throw failedPrecondition(...refusal);
        return store.updateGrant(db, userId, grantId, { state: to });
      });
      if (!grant) throw grantNotFound();
      ctx.events.grantEvent(event, grant);
      return { details: details(grant, grant.org_id) };
    });
  };
  stateChange(
    '_deactivate',
    'USER_GRANT_STATE_ACTIVE',
    'USER_GRANT_STATE_INACTIVE',
    ['COMMAND-1S9gx', 'User grant is not active'],
    'user.grant.deactivated',
  );
  stateChange(
    '_reactivate',
    'USER_GRANT_STATE_INACTIVE',
    'USER_GRANT_STATE_ACTIVE',
    ['COMMAND-1ML0v', 'User grant is not inactive'],
    'user.grant.reactivated',
  );
}

/** to_jsonb() turns timestamps into strings and bigints into numbers; restore the row's types. */
function userFromJson(raw: unknown): UserRow {
  const row = raw as Record<string, unknown>;
  const date = (v: unknown) => (typeof v === 'string' ? new Date(v) : null);
  return {
    ...(row as unknown as UserRow),
    sequence: String(row.sequence),
    created_at: date(row.created_at)!,
    changed_at: date(row.changed_at)!,
    password_changed_at: date(row.password_changed_at),
  };
}
