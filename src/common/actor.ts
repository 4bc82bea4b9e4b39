import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { AuthenticatedRequest } from '../auth/principal.js';

/** Who made a change, as the audit trail records it. */
export interface Actor {
  /** Local user id; null for a Zitadel service account or the system. */
  userId: string | null;
  /** Zitadel id, or `system` for automatic changes. */
  zitadelId: string;
  /** The request's X-Request-Id, tying the audit row to the logs. */
  requestId: string | null;
}

export const SYSTEM_ACTOR: Actor = { userId: null, zitadelId: 'system', requestId: null };

/** The authenticated caller as an audit actor; only on routes that are not public. */
export const CurrentActor = createParamDecorator((_data: unknown, context: ExecutionContext): Actor => {
  const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
  const principal = request.user;
  if (!principal) throw new Error('CurrentActor used on a route without authentication');
  return { userId: principal.userId, zitadelId: principal.zitadelId, requestId: String(request.id) };
});
