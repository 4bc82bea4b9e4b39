import { AddRouteConfig } from '../common/http/route-config.js';

/** The route config key that the change barrier's onSend hook reads (app.ts). */
export const CHANGE_BARRIER_CONFIG = 'changeBarrier';

/**
 * For a write route that changes no row the change feed's caches hold (users and sessions, the tables
 * with change triggers): its answer need not wait for ChangeFeedService.barrier, a round trip through
 * PostgreSQL and the listener that would prove nothing. Only where every statement the route can run
 * writes other tables (the settings of a user, say); test/change-feed.e2e-spec.ts checks both kinds.
 */
export const WritesNoCachedRows = (): MethodDecorator => AddRouteConfig({ [CHANGE_BARRIER_CONFIG]: false });
