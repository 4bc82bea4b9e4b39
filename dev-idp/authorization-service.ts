import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ServiceImpl } from '@connectrpc/connect';
import {
  AuthorizationSchema,
  type AuthorizationsSearchFilter,
  State,
} from '@zitadel/proto/zitadel/authorization/v2beta/authorization_pb.js';
import type { AuthorizationService } from '@zitadel/proto/zitadel/authorization/v2beta/authorization_service_pb.js';
import { OrganizationState } from '@zitadel/proto/zitadel/org/v2/org_pb.js';
import type { OrganizationService } from '@zitadel/proto/zitadel/org/v2/org_service_pb.js';
import type { IdpContext } from './context.js';
import { alreadyExists, failedPrecondition, invalidRequest, notFound } from './errors.js';
import { type Params, details, listDetails, listPage, text, textCondition } from './messages.js';
import type { GrantRow, OrganizationRow, UserRow } from './store.js';
import { userNotFound } from './user-service.js';

/** Role keys as Zitadel validates them: 1-200 characters each, at most 100, each once. */
function roleKeys(what: string, keys: string[]): string[] {
  if (keys.length > 100) throw invalidRequest(what, 'roleKeys', 'at most 100');
  const trimmed = keys.map((key) => text(what, 'roleKeys', key));
  if (new Set(trimmed).size !== trimmed.length)
    throw invalidRequest(what, 'roleKeys', 'role keys must be unique');
  return trimmed;
}

/** A ListAuthorizations filter as SQL; the filters are AND-ed, as in Zitadel. */
function grantCondition({ filter }: AuthorizationsSearchFilter, params: Params): string {
  switch (filter.case) {
    case 'userId':
      return `g.user_id = ${params.add(filter.value.id)}`;
    case 'projectId':
      return `g.project_id = ${params.add(filter.value.id)}`;
    case 'organizationId':
    case 'userOrganizationId': // an authorization belongs to its user's organization
      return `g.org_id = ${params.add(filter.value.id)}`;
    case 'authorizationIds':
      return `g.id = ANY(${params.add(filter.value.ids)}::text[])`;
    case 'state': {
      const state = filter.value.state === State.INACTIVE ? 'INACTIVE' : 'ACTIVE'; // UNSPECIFIED: active
      return `g.state = ${params.add(`USER_GRANT_STATE_${state}`)}`;
    }
    case 'roleKey': {
      const inner = textCondition('r.key', filter.value.key, filter.value.method, params);
      return `EXISTS (SELECT 1 FROM unnest(g.role_keys) AS r(key) WHERE ${inner})`;
    }
    case 'projectGrantId':
    case 'projectName':
    case 'userDisplayName':
    case 'userPreferredLoginName':
    case undefined:
      throw failedPrecondition(
        'DEVIDP-FILTER',
        `filter ${filter.case} is not supported by the development IdP`,
      );
  }
}

/**
 * zitadel.authorization.v2beta.AuthorizationService: a user's roles in the project (formerly user grants),
 * one authorization per user and project, in the user's organization. Delete, activate and deactivate
 * succeed when the state is already reached, as Zitadel documents.
 */
export function authorizationService(ctx: IdpContext): Partial<ServiceImpl<typeof AuthorizationService>> {
  const { store } = ctx;
  const setState = async (id: string, state: GrantRow['state'], event: string) => {
    const grant = await store.getGrantById(store.pool, id);
    if (!grant) throw notFound('AUTHZ-5Zqc0', 'Authorization not found');
    if (grant.state === state) return { changeDate: timestampFromDate(grant.changed_at) };
    const updated = (await store.updateGrant(store.pool, id, { state })) ?? grant;
    ctx.events.grantEvent(event, updated);
    return { changeDate: timestampFromDate(updated.changed_at) };
  };
  const present = (grant: GrantRow, user: UserRow) =>
    create(AuthorizationSchema, {
      id: grant.id,
      projectId: grant.project_id,
      projectName: ctx.projectName,
      projectOrganizationId: ctx.orgId,
      organizationId: grant.org_id,
      creationDate: timestampFromDate(new Date(grant.created_at)),
      changeDate: timestampFromDate(new Date(grant.changed_at)),
      state: grant.state === 'USER_GRANT_STATE_INACTIVE' ? State.INACTIVE : State.ACTIVE,
      user: {
        id: grant.user_id,
        preferredLoginName: user.username,
        displayName: user.display_name,
        organizationId: user.org_id,
      },
      roles: grant.role_keys,
    });

  return {
    async listAuthorizations(req) {
      const { rows, total, limit } = await listPage<GrantRow & { user: UserRow }>(
        store.pool,
        req.pagination,
        {
          select: 'g.*, to_jsonb(u.*) AS user',
          from: 'dev_idp.user_grants g JOIN dev_idp.users u ON u.id = g.user_id',
          where: (params) => req.filters.map((filter) => grantCondition(filter, params)),
          order: ['g.created_at', 'g.id'],
        },
      );
      return {
        pagination: { totalResult: BigInt(total), appliedLimit: BigInt(limit) },
        authorizations: rows.map(({ user, ...grant }) => present(grant, user)),
      };
    },
    async createAuthorization(req) {
      const keys = roleKeys('CreateAuthorizationRequest', req.roleKeys);
      if (req.projectId !== ctx.projectId) throw notFound('AUTHZ-Bp0lf', 'Project not found');
      const user = await store.getUser(store.pool, req.userId);
      if (!user) throw userNotFound();
      // Project grants to other organizations do not exist here.
      if (req.organizationId !== undefined && req.organizationId !== user.org_id)
        throw notFound('AUTHZ-Org404', 'Organization not found');
      const grant = await store.insertGrant(store.pool, {
        userId: req.userId,
        projectId: req.projectId,
        orgId: user.org_id,
        roleKeys: keys,
      });
      if (!grant) throw alreadyExists('COMMAND-2N9ds', 'User grant already exists');
      ctx.events.grantEvent('user.grant.added', grant);
      return { id: grant.id, creationDate: timestampFromDate(grant.created_at) };
    },
    async updateAuthorization(req) {
      const keys = roleKeys('UpdateAuthorizationRequest', req.roleKeys);
      const updated = await store.updateGrant(store.pool, req.id, { roleKeys: keys });
      if (!updated) throw notFound('AUTHZ-5Zqc0', 'Authorization not found');
      ctx.events.grantEvent('user.grant.changed', updated);
      return { changeDate: timestampFromDate(updated.changed_at) };
    },
    async deleteAuthorization(req) {
      // "In case the authorization is not found, the request will return a successful response."
      const deleted = await store.deleteGrant(store.pool, req.id);
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

/** The domain an organization would have in Zitadel: its name, lower-cased, under the IdP's domain. */
export function organizationDomain(ctx: IdpContext, org: Pick<OrganizationRow, 'id' | 'name'>): string {
  if (org.id === ctx.orgId) return ctx.orgDomain;
  const label =
    org.name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || org.id;
  return `${label}.${ctx.orgDomain}`;
}

/**
 * zitadel.org.v2.OrganizationService: organizations (tenants) to add and list; the configured one always
 * exists. No domains, admins, metadata or state changes.
 */
export function organizationService(ctx: IdpContext): Partial<ServiceImpl<typeof OrganizationService>> {
  const { store } = ctx;
  return {
    async addOrganization(req) {
      const name = text('AddOrganizationRequest', 'name', req.name);
      if (req.orgId !== undefined)
        text('AddOrganizationRequest', 'orgId', req.orgId, { max: 30, pattern: /^\d+$/ });
      const org = await store.insertOrganization(store.pool, name, req.orgId);
      if (!org) throw alreadyExists('ORG-lapo2m', 'Organisation already exists');
      return { details: details(org, org.id), organizationId: org.id };
    },
    async listOrganizations(req) {
      const { rows, total } = await listPage<OrganizationRow>(store.pool, req.query, {
        select: '*',
        from: 'dev_idp.organizations',
        order: ['created_at', 'id'],
      });
      return {
        details: listDetails(total),
        result: rows.map((org) => ({
          id: org.id,
          details: details(org, org.id),
          state: OrganizationState.ACTIVE,
          name: org.name,
          primaryDomain: organizationDomain(ctx, org),
        })),
      };
    },
  };
}
