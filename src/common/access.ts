import type { Permission } from '../config/app-config.js';

/**
 * Who may call a route. Every route declares exactly one (through `@Endpoint`); the global guard refuses
 * routes that declare none, and a test walks every route to prove each has one.
 * - public: anyone, no token needed
 * - authenticated: any active user with a valid token
 * - permission: a caller holding that permission
 * - selfOr: the user named by the `:id` path parameter themself, or a caller holding the permission
 */
export type Access = 'public' | 'authenticated' | { permission: Permission } | { selfOr: Permission };

export const ACCESS_METADATA = 'users-api:access';

export function describeAccess(access: Access): string {
  if (access === 'public') return 'Public: no token needed.';
  if (access === 'authenticated') return 'Any authenticated user.';
  if ('permission' in access) return `Requires the \`${access.permission}\` permission.`;
  return `The user themself, or a caller with the \`${access.selfOr}\` permission.`;
}
