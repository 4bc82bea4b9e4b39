import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { IdpContext } from './context.js';
import { alreadyExists, parseInput } from './errors.js';
import { details } from './presenters.js';
import type { OrganizationRow } from './store.js';
import { DEFAULT_LIMIT, MAX_LIMIT, uint64 } from './user-query.js';

/**
 * Organizations (zitadel.org.v2.OrganizationService over its REST mapping): `AddOrganization`
 * `POST /v2/organizations {name, orgId?}` → `{details, organizationId}` and `ListOrganizations`
 * `POST /v2/organizations/_search {query{offset, limit, asc}}` → `{details{totalResult}, result[]}`.
 * Each organization is a tenant: its users, and their role grants, belong to it. The configured
 * organization always exists. No domains, admins, metadata or state changes.
 */

const addOrganizationRequest = z.object({
  name: z.string().trim().min(1).max(200),
  orgId: z
    .string()
    .regex(/^\d{1,30}$/)
    .optional(),
});
const listOrganizationsRequest = z.object({
  query: z
    .object({ offset: uint64.optional(), limit: uint64.optional(), asc: z.boolean().optional() })
    .optional(),
});

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

function presentOrganization(ctx: IdpContext, org: OrganizationRow) {
  return {
    id: org.id,
    details: details(org, org.id),
    state: 'ORGANIZATION_STATE_ACTIVE',
    name: org.name,
    primaryDomain: organizationDomain(ctx, org),
  };
}

export function registerOrganizationRoutes(app: FastifyInstance, ctx: IdpContext): void {
  const { store } = ctx;

  app.post('/v2/organizations', async (request, reply) => {
    const body = parseInput(addOrganizationRequest, request.body, 'AddOrganizationRequest');
    const org = await store.insertOrganization(store.pool, body.name, body.orgId);
    if (!org) throw alreadyExists('ORG-lapo2m', 'Organisation already exists');
    void reply.code(201);
    return { details: details(org, org.id), organizationId: org.id, createdAdmins: [] };
  });

  app.post('/v2/organizations/_search', async (request) => {
    const body = parseInput(listOrganizationsRequest, request.body, 'ListOrganizationsRequest');
    const { total, rows } = await store.listOrganizations(store.pool, {
      offset: body.query?.offset ?? 0,
      limit: Math.min(body.query?.limit || DEFAULT_LIMIT, MAX_LIMIT),
      asc: body.query?.asc ?? false,
    });
    return {
      details: { totalResult: String(total), timestamp: new Date().toISOString() },
      result: rows.map((org) => presentOrganization(ctx, org)),
    };
  });
}
