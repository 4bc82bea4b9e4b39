import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { effectiveSettings, parseStoredValue } from '../settings/settings.definitions.js';
import type { UserVariablesDto } from './dto/user-variables.dto.js';

/**
 * One statement: the user by primary key, its two preferences by the (user_id, setting_key) unique index,
 * and its roles in the session's bot ($2; none when null) by the user_bot_roles primary key. Bot scripts
 * read these on every conversation; no Zitadel call, no entity hydration, no cache (a change to bot roles
 * counts from the next request).
 */
const VARIABLES_SQL = `
  SELECT u.id, u.username, u.email, u.display_name, u.roles,
         (SELECT b.roles FROM user_bot_roles b WHERE b.user_id = u.id AND b.bot_id = $2) AS bot_roles,
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
  bot_roles: string[] | null;
  language: string | null;
  timezone: string | null;
}

@Injectable()
export class UserVariablesService {
  constructor(private readonly dataSource: DataSource) {}

  /** With `botId`: `role` and `roles` are the user's roles in that bot where set, else the organization's. */
  async forUser(userId: string, botId: string | null = null): Promise<UserVariablesDto> {
    const [row] = await this.dataSource.query<VariablesRow[]>(VARIABLES_SQL, [userId, botId]);
    if (!row) throw ApiError.userNotFound();
    const settings = effectiveSettings({
      language: parseStoredValue('language', row.language),
      timezone: parseStoredValue('timezone', row.timezone),
    });
    const roles = [...(row.bot_roles ?? row.roles)].sort();
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
