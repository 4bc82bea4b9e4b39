import { describe, expect, it } from '@jest/globals';
import {
  canonicalLanguageTag,
  canonicalTimeZone,
  effectiveSettings,
  parseStoredValue,
} from './settings.definitions.js';
import { applyPatch, changedSettings } from './settings.service.js';

describe('language tags', () => {
  it.each([
    ['en', 'en'],
    ['EN-us', 'en-US'],
    ['zh-hant-tw', 'zh-Hant-TW'],
    ['sr-Latn-RS', 'sr-Latn-RS'],
    ['de-CH-1996', 'de-CH-1996'],
    ['en-US-u-ca-gregory', 'en-US-u-ca-gregory'],
  ])('accepts %s as %s', (input, canonical) => {
    expect(canonicalLanguageTag(input)).toBe(canonical);
  });

  it.each(['', 'en_US', 'english', 'x', 'i-klingon', '123', 'en-', 'a'.repeat(36), 7, null])(
    'refuses %p',
    (input) => {
      expect(canonicalLanguageTag(input)).toBeUndefined();
    },
  );
});

describe('time zones', () => {
  it.each([
    ['UTC', 'UTC'],
    ['utc', 'UTC'],
    ['Europe/Berlin', 'Europe/Berlin'],
    ['america/new_york', 'America/New_York'],
    ['Etc/UTC', 'Etc/UTC'],
    ['US/Eastern', 'US/Eastern'],
    ['Etc/GMT+1', 'Etc/GMT+1'],
    ['etc/gmt-2', 'Etc/GMT-2'],
  ])('accepts %s as %s', (input, canonical) => {
    expect(canonicalTimeZone(input)).toBe(canonical);
  });

  it.each(['', 'Mars/Base', '+01:00', 'Europe/Berlin ', '../etc/passwd', 'x'.repeat(65), 1, null])(
    'refuses %p',
    (input) => {
      expect(canonicalTimeZone(input)).toBeUndefined();
    },
  );
});

describe('stored values', () => {
  it('reads valid JSON for its key and nothing else', () => {
    expect(parseStoredValue('theme', '"dark"')).toBe('dark');
    expect(parseStoredValue('theme', '"neon"')).toBeUndefined();
    expect(parseStoredValue('theme', 'dark')).toBeUndefined();
    expect(parseStoredValue('notifications', '{"push":false,"digest":"hourly","x":1}')).toEqual({
      push: false,
    });
    expect(parseStoredValue('notifications', '[]')).toBeUndefined();
    expect(parseStoredValue('default_bot', null)).toBeUndefined();
  });
});

describe('applying a patch', () => {
  it('merges, resets with null and keeps what is absent', () => {
    const before = { theme: 'dark' as const, notifications: { email: false, digest: 'daily' as const } };
    const after = applyPatch(before, { theme: null, notifications: { digest: null, push: false } });
    expect(after).toEqual({ notifications: { email: false, push: false } });
    expect(changedSettings(effectiveSettings(before), effectiveSettings(after))).toEqual({
      theme: 'system',
      notifications: { email: false, push: false, digest: 'none' },
    });
  });

  it('drops the notifications row when every key is reset', () => {
    expect(applyPatch({ notifications: { push: false } }, { notifications: { push: null } })).toEqual({});
  });
});
