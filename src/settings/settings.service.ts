import { Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { EntityManager, Repository } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { UsersService } from '../users/users.service.js';
import type { UpdateSettingsDto } from './dto/settings.dto.js';
import { UserSetting } from './entities/user-setting.entity.js';
import {
  canonicalLanguageTag,
  canonicalTimeZone,
  effectiveSettings,
  NOTIFICATION_KEYS,
  parseStoredValue,
  SETTING_KEYS,
  type Settings,
  type StoredNotifications,
  type StoredSettings,
} from './settings.definitions.js';

@Injectable()
export class SettingsService {
  private readonly logger = new Logger(SettingsService.name);

  constructor(
    @InjectRepository(UserSetting) private readonly settings: Repository<UserSetting>,
    private readonly users: UsersService,
  ) {}

  /** Every preference of the user: what they chose, the default for the rest. */
  async get(userId: string): Promise<Settings> {
    return effectiveSettings(this.parse(await this.settings.findBy({ userId })));
  }

  /**
   * Merges a validated patch into the stored preferences in one transaction: a given value is upserted,
   * a `null` deletes the row (back to the default), absent keys are untouched; `notifications` is merged
   * key by key. A value equal to the stored one is not written again. Returns the preferences whose
   * effective value changed, with their new values; 404 (nothing written) for a deleted or unknown user.
   */
  async update(userId: string, patch: UpdateSettingsDto): Promise<Partial<Settings>> {
    return this.settings.manager.transaction(async (manager) => {
      // Serializes concurrent updates of one user (the notifications merge reads before it writes, and
      // rows that do not exist yet cannot be locked with FOR UPDATE), in the statement that finds the user.
      if (!(await this.users.lockIfExists(manager, userId, 'user_settings'))) throw ApiError.userNotFound();
      const before = this.parse(
        await manager.query<UserSetting[]>(
          `SELECT setting_key AS "settingKey", setting_value AS "settingValue", user_id AS "userId"
           FROM user_settings WHERE user_id = $1`,
          [userId],
        ),
      );
      const after = applyPatch(before, patch);
      for (const key of SETTING_KEYS) {
        if (patch[key] === undefined || JSON.stringify(before[key]) === JSON.stringify(after[key])) continue;
        await this.write(manager, userId, key, after[key]);
      }
      return changedSettings(effectiveSettings(before), effectiveSettings(after));
    });
  }

  private async write(
    manager: EntityManager,
    userId: string,
    key: keyof StoredSettings,
    value: StoredSettings[keyof StoredSettings],
  ): Promise<void> {
    if (value === undefined) {
      await manager.delete(UserSetting, { userId, settingKey: key });
      return;
    }
    await manager.query(
      `INSERT INTO user_settings (user_id, setting_key, setting_value) VALUES ($1, $2, $3)
       ON CONFLICT (user_id, setting_key) DO UPDATE SET setting_value = EXCLUDED.setting_value, updated_at = now()`,
      [userId, key, JSON.stringify(value)],
    );
  }

  private parse(rows: UserSetting[]): StoredSettings {
    const stored: StoredSettings = {};
    for (const row of rows) {
      // The table is a key-value store; keys this service does not know are left alone.
      if (!(SETTING_KEYS as string[]).includes(row.settingKey)) continue;
      const key = row.settingKey as keyof StoredSettings;
      const value = parseStoredValue(key, row.settingValue);
      if (value === undefined) {
        this.logger.warn(`Ignoring unreadable setting ${key} of user ${row.userId}`);
        continue;
      }
      (stored as Record<string, unknown>)[key] = value;
    }
    return stored;
  }
}

/** The stored state after the patch; `undefined` where a row must not exist. */
export function applyPatch(before: StoredSettings, patch: UpdateSettingsDto): StoredSettings {
  const after: StoredSettings = { ...before };
  const set = <K extends keyof StoredSettings>(key: K, value: StoredSettings[K] | null | undefined) => {
    if (value === undefined) return;
    if (value === null) delete after[key];
    else after[key] = value;
  };
  set('theme', patch.theme);
  // The validators accepted these; canonicalization cannot fail for them.
  set('language', patch.language === null ? null : patch.language && canonicalLanguageTag(patch.language));
  set('timezone', patch.timezone === null ? null : patch.timezone && canonicalTimeZone(patch.timezone));
  set('default_bot', patch.default_bot);
  if (patch.notifications === null) {
    delete after.notifications;
  } else if (patch.notifications !== undefined) {
    const merged: StoredNotifications = { ...before.notifications };
    for (const key of NOTIFICATION_KEYS) {
      const value = patch.notifications[key];
      if (value === null) delete merged[key];
      else if (value !== undefined) (merged as Record<string, unknown>)[key] = value;
    }
    // Fixed key order, so the stored JSON is stable whatever order the request used.
    const ordered: StoredNotifications = {};
    for (const key of NOTIFICATION_KEYS) {
      if (merged[key] !== undefined) (ordered as Record<string, unknown>)[key] = merged[key];
    }
    if (Object.keys(ordered).length) after.notifications = ordered;
    else delete after.notifications;
  }
  return after;
}

export function changedSettings(before: Settings, after: Settings): Partial<Settings> {
  const changes: Partial<Settings> = {};
  for (const key of SETTING_KEYS) {
    if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) {
      (changes as Record<string, unknown>)[key] = after[key];
    }
  }
  return changes;
}
