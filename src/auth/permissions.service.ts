import { Inject, Injectable, Optional } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { INSTANCE_PERMISSIONS, type AppConfig, type Permission } from '../config/app-config.js';
import { ZITADEL_CONNECTION, type ZitadelConnection } from '../zitadel/zitadel-connection.js';

/**
 * Roles → permissions, from ROLE_PERMISSIONS (default: iam_admin holds all, admin every `admin:*`, manager
 * admin:monitor, user none). Instance-wide permissions (`iam:users`) count only for a caller of the
 * configured organization (ZITADEL_ORG_ID, which owns the project and its roles): a customer
 * organization's administrator who managed to hold such a role in their own organization still gets none.
 */
@Injectable()
export class PermissionsService {
  private readonly byRole: ReadonlyMap<string, readonly Permission[]>;
  /** Users have one or two roles; the same few combinations recur on every request. */
  private readonly cache = new Map<string, ReadonlySet<Permission>>();
  private readonly homeOrgId: string | undefined;

  constructor(
    config: ConfigService<AppConfig, true>,
    @Optional() @Inject(ZITADEL_CONNECTION) connection?: Pick<ZitadelConnection, 'orgId'>,
  ) {
    this.byRole = new Map(Object.entries(config.get('auth', { infer: true }).rolePermissions));
    this.homeOrgId = connection?.orgId;
  }

  /** The permissions of these roles held by a caller of organization `orgId` (null: unknown). */
  forRoles(roles: readonly string[], orgId: string | null = this.homeOrgId ?? null): ReadonlySet<Permission> {
    const instanceWide = this.homeOrgId === undefined || orgId === this.homeOrgId;
    const key = `${instanceWide ? 'i' : 'o'}\u0000${roles.join('\u0000')}`;
    let permissions = this.cache.get(key);
    if (!permissions) {
      permissions = new Set(
        roles
          .flatMap((role) => this.byRole.get(role) ?? [])
          .filter((permission) => instanceWide || !INSTANCE_PERMISSIONS.includes(permission)),
      );
      if (this.cache.size < 1_000) this.cache.set(key, permissions);
    }
    return permissions;
  }

  /** Whether any of these roles carries an instance-wide permission (granting one needs one). */
  grantsInstancePermission(roles: readonly string[]): boolean {
    return roles.some((role) => (this.byRole.get(role) ?? []).some((p) => INSTANCE_PERMISSIONS.includes(p)));
  }
}
