/**
 * The user preferences this service knows: their allowed values, defaults, canonical forms, and how a
 * stored row is read back. Shared by the request validators and the service so both apply one rule.
 */

export const THEMES = ['light', 'dark', 'system'] as const;
export type Theme = (typeof THEMES)[number];

export const DIGESTS = ['none', 'daily', 'weekly'] as const;
export type Digest = (typeof DIGESTS)[number];

export const DEFAULT_BOT_MAX_LENGTH = 100;

/** RFC 5646 asks implementations to handle tags of at least 35 characters; longer ones are not plausible. */
export const LANGUAGE_TAG_MAX_LENGTH = 35;

export interface NotificationSettings {
  email: boolean;
  push: boolean;
  digest: Digest;
}

export interface Settings {
  theme: Theme;
  language: string;
  timezone: string;
  notifications: NotificationSettings;
  default_bot: string | null;
}

export type SettingKey = keyof Settings;
export const SETTING_KEYS: SettingKey[] = ['theme', 'language', 'timezone', 'notifications', 'default_bot'];
export const NOTIFICATION_KEYS: Array<keyof NotificationSettings> = ['email', 'push', 'digest'];

/** What a user who never chose anything gets. Not stored: changing a default here applies to them at once. */
export function defaultSettings(): Settings {
  return {
    theme: 'system',
    language: 'en',
    timezone: 'UTC',
    notifications: { email: true, push: true, digest: 'none' },
    default_bot: null,
  };
}

/**
 * The canonical form of a well-formed BCP 47 language tag (`EN-us` → `en-US`), or undefined. Intl checks
 * the syntax; on top, the primary language subtag must be 2–3 letters (ISO 639), since the 5–8 letter form
 * the grammar allows is reserved and would let words like `english` through.
 */
export function canonicalLanguageTag(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > LANGUAGE_TAG_MAX_LENGTH)
    return undefined;
  let canonical: string | undefined;
  try {
    canonical = Intl.getCanonicalLocales(value)[0];
  } catch {
    return undefined;
  }
  return canonical && /^[a-z]{2,3}(-|$)/.test(canonical) ? canonical : undefined;
}

let zoneNames: Map<string, string> | undefined;

/** IANA zone names Intl knows, keyed by lower case, to restore the canonical spelling of `america/new_york`. */
function knownZones(): Map<string, string> {
  zoneNames ??= new Map(
    [...Intl.supportedValuesOf('timeZone'), 'UTC'].map((zone) => [zone.toLowerCase(), zone]),
  );
  return zoneNames;
}

/**
 * The canonical spelling of an IANA time zone, or undefined. A name counts when `Intl.DateTimeFormat`
 * (ICU's copy of the IANA database) takes it: `Intl.supportedValuesOf` alone would refuse `UTC`, `Etc/*`
 * and links such as `US/Eastern` or `Asia/Kolkata`. The case is restored from Intl where it knows the name;
 * a link is kept as written rather than replaced by its target. Offsets like `+01:00` are refused.
 */
export function canonicalTimeZone(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return undefined;
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(value)) return undefined;
  const lower = value.toLowerCase();
  const known = knownZones().get(lower);
  if (known) return known;
  try {
    const resolved = new Intl.DateTimeFormat('en-US', { timeZone: value }).resolvedOptions().timeZone;
    return resolved.toLowerCase() === lower ? resolved : value;
  } catch {
    return undefined;
  }
}

/** The part of the notification preferences a user has chosen; the rest comes from the defaults. */
export type StoredNotifications = Partial<NotificationSettings>;

/** What the rows of one user hold, keys absent where nothing (valid) is stored. */
export interface StoredSettings {
  theme?: Theme;
  language?: string;
  timezone?: string;
  notifications?: StoredNotifications;
  default_bot?: string;
}

/**
 * Reads one stored JSON value back. A value that no longer fits its key's rules (hand-edited, written by
 * an older version) reads as unset, so the user gets the default instead of a 500 on every GET.
 */
export function parseStoredValue<K extends SettingKey>(
  key: K,
  text: string | null,
): StoredSettings[K] | undefined {
  if (text === null) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  switch (key) {
    case 'theme':
      return (THEMES.includes(value as Theme) ? value : undefined) as StoredSettings[K];
    case 'language':
      return canonicalLanguageTag(value) as StoredSettings[K];
    case 'timezone':
      return canonicalTimeZone(value) as StoredSettings[K];
    case 'default_bot':
      return (
        typeof value === 'string' && value.length > 0 && value.length <= DEFAULT_BOT_MAX_LENGTH
          ? value
          : undefined
      ) as StoredSettings[K];
    case 'notifications': {
      if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
      const raw = value as Record<string, unknown>;
      const parsed: StoredNotifications = {};
      if (typeof raw.email === 'boolean') parsed.email = raw.email;
      if (typeof raw.push === 'boolean') parsed.push = raw.push;
      if (DIGESTS.includes(raw.digest as Digest)) parsed.digest = raw.digest as Digest;
      return (Object.keys(parsed).length ? parsed : undefined) as StoredSettings[K];
    }
    default:
      return undefined;
  }
}

/** Stored choices over the defaults: what GET answers. */
export function effectiveSettings(stored: StoredSettings): Settings {
  const defaults = defaultSettings();
  return {
    theme: stored.theme ?? defaults.theme,
    language: stored.language ?? defaults.language,
    timezone: stored.timezone ?? defaults.timezone,
    notifications: {
      email: stored.notifications?.email ?? defaults.notifications.email,
      push: stored.notifications?.push ?? defaults.notifications.push,
      digest: stored.notifications?.digest ?? defaults.notifications.digest,
    },
    default_bot: stored.default_bot ?? defaults.default_bot,
  };
}
