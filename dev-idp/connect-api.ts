import { fromJson, toJson } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  Code,
  ConnectError,
  type ConnectRouter,
  type HandlerContext,
  type Interceptor,
  type ServiceImpl,
} from '@connectrpc/connect';
import { fastifyConnectPlugin } from '@connectrpc/connect-fastify';
import { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import {
  AuthorizationSchema,
  State,
  type AuthorizationJson,
} from '@zitadel/proto/zitadel/authorization/v2beta/authorization_pb.js';
import { ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { OrganizationService } from '@zitadel/proto/zitadel/org/v2/org_service_pb.js';
import { SessionService } from '@zitadel/proto/zitadel/session/v2/session_service_pb.js';
import { SettingsService } from '@zitadel/proto/zitadel/settings/v2/settings_service_pb.js';
import { UserService } from '@zitadel/proto/zitadel/user/v2/user_service_pb.js';
import type { FastifyInstance } from 'fastify';
import { sameSecret } from './api-auth.js';
import type { IdpContext } from './context.js';
import { GrpcCode, alreadyExists, failedPrecondition, notFound } from './errors.js';
import type { GrantRow, UserRow } from './store.js';
import { DEFAULT_LIMIT, MAX_LIMIT, Params } from './user-query.js';

/**
 * Zitadel's services over Connect (`POST /<package>.<Service>/<Method>`, JSON or binary), implemented over
 * the service descriptors of `@zitadel/proto`: the request and response types are Zitadel's own.
 *
 * The user, session and settings services answer through dev-idp's REST handlers (the grpc-gateway mapping
 * Zitadel also serves, see README.md): each request message goes in as its protojson, and each answer is
 * parsed back with `fromJson` against Zitadel's response message, strictly (an unknown field fails the
 * call), so a JSON shape dev-idp gets wrong breaks its own tests instead of agreeing with a wrong client.
 * The AuthorizationService v2beta, which has no REST mapping, is implemented here on the store.
 */
export function registerConnectServices(app: FastifyInstance, ctx: IdpContext): void {
  const gateway = new Gateway(app);
  void app.register(fastifyConnectPlugin, {
    interceptors: [requireServiceAccount(ctx)],
    routes: (router: ConnectRouter) => {
      const seg = encodeURIComponent;
      router.service(UserService, {
        addHumanUser: (req, c) => gateway.call(c, 'POST', '/v2/users/human', req),
        getUserByID: (req, c) => gateway.call(c, 'GET', `/v2/users/${seg(req.userId)}`),
        listUsers: (req, c) => gateway.call(c, 'POST', '/v2/users', req),
        updateHumanUser: (req, c) => gateway.call(c, 'PUT', `/v2/users/human/${seg(req.userId)}`, req),
        deactivateUser: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/deactivate`, req),
        reactivateUser: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/reactivate`, req),
        lockUser: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/lock`, req),
        unlockUser: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/unlock`, req),
        deleteUser: (req, c) => gateway.call(c, 'DELETE', `/v2/users/${seg(req.userId)}`),
        setPassword: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/password`, req),
        setEmail: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/email`, req),
        resendEmailCode: (req, c) =>
          gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/email/resend`, req),
        verifyEmail: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/email/verify`, req),
        listAuthenticationMethodTypes: (req, c) =>
          gateway.call(c, 'GET', `/v2/users/${seg(req.userId)}/authentication_methods`),
        registerTOTP: (req, c) => gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/totp`, req),
        verifyTOTPRegistration: (req, c) =>
          gateway.call(c, 'POST', `/v2/users/${seg(req.userId)}/totp/verify`, req),
        removeTOTP: (req, c) => gateway.call(c, 'DELETE', `/v2/users/${seg(req.userId)}/totp`),
      });
      router.service(SessionService, {
        createSession: (req, c) => gateway.call(c, 'POST', '/v2/sessions', req),
        listSessions: (req, c) => gateway.call(c, 'POST', '/v2/sessions/search', req),
        getSession: (req, c) => {
          const query =
            req.sessionToken === undefined
              ? ''
              : `?${new URLSearchParams({ sessionToken: req.sessionToken }).toString()}`;
          return gateway.call(c, 'GET', `/v2/sessions/${seg(req.sessionId)}${query}`);
        },
        deleteSession: (req, c) => gateway.call(c, 'DELETE', `/v2/sessions/${seg(req.sessionId)}`, req),
      });
      router.service(SettingsService, {
        getLoginSettings: (req, c) => {
          const orgId = req.ctx?.resourceOwner.case === 'orgId' ? req.ctx.resourceOwner.value : undefined;
          const query =
            orgId === undefined ? '' : `?${new URLSearchParams({ 'ctx.orgId': orgId }).toString()}`;
          return gateway.call(c, 'GET', `/v2/settings/login${query}`);
        },
      });
      router.service(OrganizationService, {
        addOrganization: (req, c) => gateway.call(c, 'POST', '/v2/organizations', req),
        listOrganizations: (req, c) => gateway.call(c, 'POST', '/v2/organizations/_search', req),
      });
      router.service(AuthorizationService, authorizationService(ctx));
    },
  });
}

/** Zitadel's APIs demand the service account's token on every call, before anything else is looked at. */
function requireServiceAccount(ctx: IdpContext): Interceptor {
  return (next) => (request) => {
    const header = request.header.get('authorization');
    if (!header) throw zitadelConnectError(GrpcCode.Unauthenticated, 'AUTH-7mr9m', 'auth header missing');
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match || !sameSecret(match[1], ctx.serviceAccountToken)) {
      throw zitadelConnectError(GrpcCode.Unauthenticated, 'AUTH-7fs1e', 'Token is invalid');
    }
    return next(request);
  };
}

/** An error as Zitadel's Connect API sends it: the code, the text with its id, and a zitadel.v1.ErrorDetail. */
function zitadelConnectError(code: number, id: string, text: string): ConnectError {
  return new ConnectError(`${text} (${id})`, code, undefined, [
    { desc: ErrorDetailSchema, value: { id, message: text } },
  ]);
}

/** Calls dev-idp's own REST handlers (in process) and reads their answer as Zitadel's response message. */
class Gateway {
  constructor(private readonly app: FastifyInstance) {}

  /** T is the response message the service descriptor expects; fromJson makes one of that very type. */
  async call<T>(
    context: HandlerContext,
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    request?: Parameters<typeof toJson>[1],
  ): Promise<T> {
    const body = request === undefined ? undefined : toJson(context.method.input, request);
    const reply = await this.app.inject({
      method,
      url,
      headers: {
        authorization: context.requestHeader.get('authorization') ?? '',
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      payload: body === undefined ? undefined : JSON.stringify(body),
    });
    const json: unknown = reply.body ? JSON.parse(reply.body) : {};
    if (reply.statusCode >= 400) {
      const error = json as { code?: number; details?: Array<{ id?: string; message?: string }> };
      const detail = error.details?.[0];
      throw zitadelConnectError(
        error.code ?? GrpcCode.Internal,
        detail?.id ?? 'DEVIDP-INTERNAL',
        detail?.message ?? 'Internal error',
      );
    }
    try {
      return fromJson(context.method.output, json as never) as T;
    } catch (error) {
      throw new ConnectError(
        `dev-idp's answer to ${context.method.name} is not a ${context.method.output.typeName}: ${(error as Error).message}`,
        Code.Internal,
      );
    }
  }
}

/**
 * zitadel.authorization.v2beta.AuthorizationService: a user's roles in a project (formerly user grants).
 * Delete, activate and deactivate succeed when the state is already reached, as Zitadel documents.
 */
function authorizationService(ctx: IdpContext): ServiceImpl<typeof AuthorizationService> {
  const { store } = ctx;
  const byId = async (id: string): Promise<GrantRow> => {
    const grant = await store.getGrantById(store.pool, id);
    if (!grant) throw connectErrorOf(notFound('AUTHZ-5Zqc0', 'Authorization not found'));
    return grant;
  };
  const setState = async (id: string, state: GrantRow['state'], event: string) => {
    const grant = await byId(id);
    if (grant.state === state) return { changeDate: timestampFromDate(grant.changed_at) };
    const updated = (await store.updateGrant(store.pool, grant.user_id, id, { state })) ?? grant;
    ctx.events.grantEvent(event, updated);
    return { changeDate: timestampFromDate(updated.changed_at) };
  };
  return {
    async listAuthorizations(req) {
      const params = new Params();
      const where: string[] = [];
      for (const { filter } of req.filters) {
        switch (filter.case) {
          case 'userId':
            where.push(`g.user_id = ${params.add(filter.value.id)}`);
            break;
          case 'projectId':
            where.push(`g.project_id = ${params.add(filter.value.id)}`);
            break;
          case 'organizationId':
            where.push(`g.org_id = ${params.add(filter.value.id)}`);
            break;
          case 'authorizationIds':
            where.push(`g.id = ANY(${params.add(filter.value.ids)}::text[])`);
            break;
          case 'state':
            where.push(
              `g.state = ${params.add(filter.value.state === State.INACTIVE ? 'USER_GRANT_STATE_INACTIVE' : 'USER_GRANT_STATE_ACTIVE')}`,
            );
            break;
          case undefined:
            break;
          case 'projectGrantId':
          case 'projectName':
          case 'roleKey':
          case 'userDisplayName':
          case 'userOrganizationId':
          case 'userPreferredLoginName':
            throw connectErrorOf(
              failedPrecondition(
                'DEVIDP-FILTER',
                `filter ${filter.case} is not supported by the development IdP`,
              ),
            );
        }
      }
      const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
      const from = 'FROM dev_idp.user_grants g JOIN dev_idp.users u ON u.id = g.user_id';
      const countValues = [...params.values];
      const limit = Math.min(req.pagination?.limit || DEFAULT_LIMIT, MAX_LIMIT);
      const direction = req.pagination?.asc ? 'ASC' : 'DESC';
      const [grants, count] = await Promise.all([
        store.pool.query<GrantRow & { user: UserRow }>(
          `SELECT g.*, to_jsonb(u.*) AS user ${from} ${whereSql}
            ORDER BY g.created_at ${direction}, g.id ${direction}
            LIMIT ${params.add(limit)} OFFSET ${params.add(Number(req.pagination?.offset ?? 0n))}`,
          params.values,
        ),
        store.pool.query<{ total: string }>(
          `SELECT count(*)::text AS total ${from} ${whereSql}`,
          countValues,
        ),
      ]);
      return {
        pagination: { totalResult: BigInt(count.rows[0]?.total ?? '0'), appliedLimit: BigInt(limit) },
        authorizations: grants.rows.map(({ user, ...grant }) => presentAuthorization(ctx, grant, user)),
      };
    },
    async createAuthorization(req) {
      if (req.projectId !== ctx.projectId) throw connectErrorOf(notFound('AUTHZ-Bp0lf', 'Project not found'));
      const user = await store.getUser(store.pool, req.userId);
      if (!user) throw connectErrorOf(notFound('QUERY-Dfbg2', 'User could not be found'));
      // An authorization belongs to its user's organization (project grants to others do not exist here).
      if (req.organizationId !== undefined && req.organizationId !== user.org_id)
        throw connectErrorOf(notFound('AUTHZ-Org404', 'Organization not found'));
      const grant = await store.insertGrant(store.pool, {
        userId: req.userId,
        projectId: req.projectId,
        orgId: user.org_id,
        roleKeys: [...new Set(req.roleKeys)],
      });
      if (!grant) throw connectErrorOf(alreadyExists('COMMAND-2N9ds', 'User grant already exists'));
      ctx.events.grantEvent('user.grant.added', grant);
      return { id: grant.id, creationDate: timestampFromDate(grant.created_at) };
    },
    async updateAuthorization(req) {
      const grant = await byId(req.id);
      const updated = await store.updateGrant(store.pool, grant.user_id, grant.id, {
        roleKeys: [...new Set(req.roleKeys)],
      });
      if (!updated) throw connectErrorOf(notFound('AUTHZ-5Zqc0', 'Authorization not found'));
      ctx.events.grantEvent('user.grant.changed', updated);
      return { changeDate: timestampFromDate(updated.changed_at) };
    },
    async deleteAuthorization(req) {
      const grant = await store.getGrantById(store.pool, req.id);
      // "In case the authorization is not found, the request will return a successful response."
      if (!grant) return {};
      const deleted = await store.deleteGrant(store.pool, grant.user_id, grant.id);
      if (deleted)
        ctx.events.grantEvent('user.grant.removed', {
          ...deleted,
          sequence: String(BigInt(deleted.sequence) + 1n),
        });
      return { deletionDate: timestampFromDate(new Date()) };
    },
    activateAuthorization: (req) => setState(req.id, 'USER_GRANT_STATE_ACTIVE', 'user.grant.reactivated'),
    deactivateAuthorization: (req) => setState(req.id, 'USER_GRANT_STATE_INACTIVE', 'user.grant.deactivated'),
  };
}

/** zitadel.authorization.v2beta.Authorization */
function presentAuthorization(ctx: IdpContext, grant: GrantRow, user: UserRow) {
  const json: AuthorizationJson = {
    id: grant.id,
    projectId: grant.project_id,
    projectName: ctx.projectName,
    projectOrganizationId: ctx.orgId,
    organizationId: grant.org_id,
    creationDate: new Date(grant.created_at).toISOString(),
    changeDate: new Date(grant.changed_at).toISOString(),
    state: grant.state === 'USER_GRANT_STATE_INACTIVE' ? 'STATE_INACTIVE' : 'STATE_ACTIVE',
    user: {
      id: grant.user_id,
      preferredLoginName: user.username,
      displayName: user.display_name,
      avatarUrl: '',
      organizationId: user.org_id,
    },
    roles: grant.role_keys,
  };
  return fromJson(AuthorizationSchema, json);
}

function connectErrorOf(error: { code: number; id: string; text: string }): ConnectError {
  return zitadelConnectError(error.code, error.id, error.text);
}
