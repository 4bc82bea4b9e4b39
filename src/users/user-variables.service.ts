import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { effectiveSettings, parseStoredValue } from '../settings/settings.definitions.js';
import type { UserVariablesDto } from './dto/user-variables.dto.js';

/**
 * One statement: the user by primary key, and its two preferences by the (user_id, setting_key) unique
 * index. Bot scripts read these on every conversation; no Zitadel call, no entity hydration.
 */
const VARIABLES_SQL = `
  SELECT u.id, u.username, u.email, u.display_name, u.roles,
         (SELECT s.setting_value FROM user_settings s
           WHERE s.user_id = u.id AND s.setting_key = 'language') AS language,
         (SELECT s.setting_value FROM user_settings s
           WHERE s.user_id = u.id AND s.setting_key = 'timezone') AS timezone
  FROM users u WHERE u.id = $1 AND u.status <> 'deleted'`;

/** The contract's BASIC roles, highest first; any other role ranks below them. */
const ROLE_RANK = ['admin', 'manager', 'user'];

/** The highest of the roles (admin > manager > user > anything else, then alphabetical). */
export function highestRole(roles: string[]): string {
  const rank = (role: string) => {
    const index = ROLE_RANK.indexOf(role);
    return index === -1 ? ROLE_RANK.length : index;
  };
  return [...roles].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))[0] ?? 'user';
}

interface VariablesRow {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  roles: string[];
  language: string | null;
  timezone: string | null;
}

@Injectable()
export class UserVariablesService {
  constructor(private readonly dataSource: DataSource) {}

  async forUser(userId: string): Promise<UserVariablesDto> {
    const [row] = await this.dataSource.query<VariablesRow[]>(VARIABLES_SQL, [userId]);
    if (!row) throw ApiError.userNotFound();
    const settings = effectiveSettings({
      language: parseStoredValue('language', row.language),
      timezone: parseStoredValue('timezone', row.timezone),
    });
    const roles = [...row.roles].sort();
    return {
      user_id: row.id,
      user_name: row.display_name || row.username,
      user_email: row.email,
      role: highestRole(roles),
      roles,
      language: settings.language,
      timezone: settings.timezone,
    };
  }
}
