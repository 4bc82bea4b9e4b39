import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { expectContract } from './support/contract.js';
import { bearer, setLocalStatus, signedInUser, type SignedInUser } from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const PATH = '/api/users/{id}/settings';
const DEFAULTS = {
  theme: 'system',
  language: 'en',
  timezone: 'UTC',
  notifications: { email: true, push: true, digest: 'none' },
  default_bot: null,
};

describe('user settings', () => {
  let t: TestApp;
  let admin: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    admin = await signedInUser(t, { roles: ['admin'] });
  });
  afterAll(() => t.close());

  const get = async (user: SignedInUser, id = user.userId) => {
    const res = await t.http({
      method: 'GET',
      url: `/api/users/${id}/settings`,
      headers: bearer(user.token),
    });
    expectContract('GET', PATH, res);
    return res;
  };
  const put = async (user: SignedInUser, payload: unknown, id = user.userId) => {
    const res = await t.http({
      method: 'PUT',
      url: `/api/users/${id}/settings`,
      headers: bearer(user.token),
      payload: payload as Record<string, unknown>,
    });
    expectContract('PUT', PATH, res);
    return res;
  };
  const rows = (userId: string) =>
    t.app
      .get(DataSource)
      .query<{ setting_key: string; setting_value: string }[]>(
        `SELECT setting_key, setting_value FROM user_settings WHERE user_id = $1 ORDER BY setting_key`,
        [userId],
      );

  it('answers the defaults for a user who set nothing', async () => {
    const user = await signedInUser(t);
    const res = await get(user);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(DEFAULTS);
    expect(await rows(user.userId)).toEqual([]);
  });

  it('merges a PUT into the stored preferences and reports what changed', async () => {
    const user = await signedInUser(t);
    const first = await put(user, {
      theme: 'dark',
      language: 'en',
      notifications: { email: true, push: false, digest: 'daily' },
      default_bot: 'support-bot',
    });
    expect(first.statusCode).toBe(200);
    // language "en" and notifications.email true were already in effect (defaults): not changes.
    expect(first.json()).toEqual({
      status: 'updated',
      settings: {
        theme: 'dark',
        notifications: { email: true, push: false, digest: 'daily' },
        default_bot: 'support-bot',
      },
    });

    const second = await put(user, { timezone: 'America/New_York' });
    expect(second.json()).toEqual({ status: 'updated', settings: { timezone: 'America/New_York' } });

    expect((await get(user)).json()).toEqual({
      theme: 'dark',
      language: 'en',
      timezone: 'America/New_York',
      notifications: { email: true, push: false, digest: 'daily' },
      default_bot: 'support-bot',
    });
    // One row per key, the value as JSON text.
    expect(await rows(user.userId)).toEqual([
      { setting_key: 'default_bot', setting_value: '"support-bot"' },
      { setting_key: 'language', setting_value: '"en"' },
      { setting_key: 'notifications', setting_value: '{"email":true,"push":false,"digest":"daily"}' },
      { setting_key: 'theme', setting_value: '"dark"' },
      { setting_key: 'timezone', setting_value: '"America/New_York"' },
    ]);
  });

  it('merges a partial notifications object key by key', async () => {
    const user = await signedInUser(t);
    await put(user, { notifications: { push: false } });
    const res = await put(user, { notifications: { digest: 'weekly' } });
    expect(res.json()).toEqual({
      status: 'updated',
      settings: { notifications: { email: true, push: false, digest: 'weekly' } },
    });
    expect((await get(user)).json().notifications).toEqual({ email: true, push: false, digest: 'weekly' });
    expect(await rows(user.userId)).toEqual([
      { setting_key: 'notifications', setting_value: '{"push":false,"digest":"weekly"}' },
    ]);
  });

  it('resets a key to its default with null, deleting its row', async () => {
    const user = await signedInUser(t);
    await put(user, {
      theme: 'light',
      default_bot: 'sales-bot',
      notifications: { email: false, push: false },
    });
    const res = await put(user, { theme: null, default_bot: null, notifications: { email: null } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      status: 'updated',
      settings: {
        theme: 'system',
        notifications: { email: true, push: false, digest: 'none' },
        default_bot: null,
      },
    });
    expect(await rows(user.userId)).toEqual([
      { setting_key: 'notifications', setting_value: '{"push":false}' },
    ]);

    await put(user, { notifications: null });
    expect(await rows(user.userId)).toEqual([]);
    expect((await get(user)).json()).toEqual(DEFAULTS);
  });

  it('stores the canonical forms of language tags and time zones', async () => {
    const user = await signedInUser(t);
    const res = await put(user, { language: 'PT-br', timezone: 'america/sao_paulo' });
    expect(res.json().settings).toEqual({ language: 'pt-BR', timezone: 'America/Sao_Paulo' });
    await put(user, { language: 'zh-hant-tw', timezone: 'Etc/UTC' });
    expect((await get(user)).json()).toMatchObject({ language: 'zh-Hant-TW', timezone: 'Etc/UTC' });
  });

  it('answers an empty body with no changes and writes nothing', async () => {
    const user = await signedInUser(t);
    const res = await put(user, {});
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'updated', settings: {} });
    expect(await rows(user.userId)).toEqual([]);
  });

  it.each([
    ['theme', { theme: 'blue' }],
    ['theme', { theme: 3 }],
    ['language', { language: 'en_US' }],
    ['language', { language: 'english' }],
    ['language', { language: '' }],
    ['language', { language: 42 }],
    ['timezone', { timezone: 'Mars/Olympus_Mons' }],
    ['timezone', { timezone: '+01:00' }],
    ['notifications', { notifications: 'on' }],
    ['notifications', { notifications: [true] }],
    ['notifications.email', { notifications: { email: 'yes' } }],
    ['notifications.push', { notifications: { push: 1 } }],
    ['notifications.digest', { notifications: { digest: 'hourly' } }],
    ['default_bot', { default_bot: 'b'.repeat(101) }],
    ['default_bot', { default_bot: '' }],
    ['default_bot', { default_bot: { id: 1 } }],
  ])('refuses a bad %s (%j) with 422 and writes nothing', async (field, bad) => {
    const user = await signedInUser(t);
    // A valid field beside the bad one: all or nothing.
    const res = await put(user, { theme: 'dark', ...bad });
    expectProblem(res, 422, 'validation_error');
    expect(res.json().errors).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    expect(await rows(user.userId)).toEqual([]);
  });

  it.each([
    ['colour', { colour: 'red' }],
    ['notifications.sms', { notifications: { sms: true } }],
  ])('refuses the unknown key %s with 422', async (field, bad) => {
    const user = await signedInUser(t);
    const res = await put(user, { language: 'fr', ...bad });
    expectProblem(res, 422, 'validation_error');
    expect(res.json().errors).toEqual(expect.arrayContaining([expect.objectContaining({ field })]));
    expect(await rows(user.userId)).toEqual([]);
  });

  it('refuses a body that is not an object (400)', async () => {
    const user = await signedInUser(t);
    const res = await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}/settings`,
      headers: { ...bearer(user.token), 'content-type': 'application/json' },
      payload: '["theme"]',
    });
    expectProblem(res, 400, 'invalid_request');
    expectContract('PUT', PATH, res);
  });

  it('lets an admin read and change another user’s preferences', async () => {
    const user = await signedInUser(t);
    expect((await put(admin, { theme: 'light' }, user.userId)).statusCode).toBe(200);
    expect((await get(admin, user.userId)).json().theme).toBe('light');
  });

  it('answers 404 user_not_found for an unknown or deleted user and 400 for a malformed id', async () => {
    const unknown = await get(admin, randomUUID());
    expectProblem(unknown, 404, 'user_not_found');
    expectProblem(await put(admin, { theme: 'dark' }, randomUUID()), 404, 'user_not_found');

    const deleted = await signedInUser(t);
    await setLocalStatus(t, deleted.userId, 'deleted');
    expectProblem(await get(admin, deleted.userId), 404, 'user_not_found');
    expectProblem(await put(admin, { theme: 'dark' }, deleted.userId), 404, 'user_not_found');
    expect(await rows(deleted.userId)).toEqual([]);

    expectProblem(await get(admin, 'not-a-uuid'), 400, 'invalid_request');
    expectProblem(await put(admin, { theme: 'dark' }, 'not-a-uuid'), 400, 'invalid_request');
  });

  it('refuses another user (403) and anonymous callers (401)', async () => {
    const [user, other] = await Promise.all([signedInUser(t), signedInUser(t)]);
    expectProblem(await get(other, user.userId), 403, 'forbidden');
    expectProblem(await put(other, { theme: 'dark' }, user.userId), 403, 'forbidden');
    const anonymous = await t.http({ method: 'GET', url: `/api/users/${user.userId}/settings` });
    expectProblem(anonymous, 401, 'unauthorized');
    expectContract('GET', PATH, anonymous);
    expect(await rows(user.userId)).toEqual([]);
  });

  it('serializes concurrent partial updates of notifications without losing one', async () => {
    const user = await signedInUser(t);
    await Promise.all([
      put(user, { notifications: { email: false } }),
      put(user, { notifications: { push: false } }),
      put(user, { notifications: { digest: 'daily' } }),
    ]);
    expect((await get(user)).json().notifications).toEqual({ email: false, push: false, digest: 'daily' });
  });

  it('reads a stored value that no longer fits its rules as the default', async () => {
    const user = await signedInUser(t);
    await t.app.get(DataSource).query(
      `INSERT INTO user_settings (user_id, setting_key, setting_value)
       VALUES ($1, 'theme', '"neon"'), ($1, 'notifications', 'not json'), ($1, 'legacy_key', '"x"')`,
      [user.userId],
    );
    expect((await get(user)).json()).toEqual(DEFAULTS);
  });
});
