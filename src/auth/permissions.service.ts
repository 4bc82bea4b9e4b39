import { Injectable } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig, Permission } from '../config/app-config.js';

/** Roles → permissions, from ROLE_PERMISSIONS (default: admin holds all, manager admin:monitor, user none). */
@Injectable()
export class PermissionsService {
  private readonly byRole: ReadonlyMap<string, readonly Permission[]>;
  /** Users have one or two roles; the same few combinations recur on every request. */
  private readonly cache = new Map<string, ReadonlySet<Permission>>();

  constructor(config: ConfigService<AppConfig, true>) {
    this.byRole = new Map(Object.entries(config.get('auth', { infer: true }).rolePermissions));
  }

  forRoles(roles: readonly string[]): ReadonlySet<Permission> {
    const key = roles.join('\u0000');
    let permissions = this.cache.get(key);
    if (!permissions) {
      permissions = new Set(roles.flatMap((role) => this.byRole.get(role) ?? []));
      if (this.cache.size < 1_000) this.cache.set(key, permissions);
    }
    return permissions;
  }
}
