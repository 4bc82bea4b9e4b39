import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { highestRole } from '../src/users/user-variables.service.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import { bearer, signedInUser, writeDirectly, type SignedInUser } from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** Issue 15, section 4: the contract's "BASIC Integration" variables, served. */
describe('BASIC variables', () => {
  let t: TestApp;
  let admin: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    admin = await signedInUser(t, { roles: ['admin'] });
  });
  afterAll(() => t.close());

  const variables = (token: string, id = 'me') =>
    t.http({ method: 'GET', url: `/api/users/${id}/variables`, headers: bearer(token) });

  it('answers the contract’s names, with the settings’ defaults', async () => {
    const user = await signedInUser(t);
    const res = await variables(user.token);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const me = (await t.http({ method: 'GET', url: '/api/users/me', headers: bearer(user.token) })).json<{
      display_name: string;
      email: string;
    }>();
    expect(res.json()).toEqual({
      user_id: user.userId,
      user_name: me.display_name,
      user_email: me.email,
      role: 'user',
      roles: ['user'],
      language: 'en',
      timezone: 'UTC',
    });
  });

  it('follows the settings, falls back to the username, and ranks roles admin > manager > user', async () => {
    const user = await signedInUser(t);
    await t.http({
      method: 'PUT',
      url: `/api/users/${user.userId}/settings`,
      headers: bearer(user.token),
      payload: { language: 'pt-br', timezone: 'America/Sao_Paulo', theme: 'dark' },
    });
    const db = t.app.get(DataSource);
    await writeDirectly(t, `UPDATE users SET display_name = NULL, roles = $2 WHERE id = $1`, [
      user.userId,
      ['user', 'manager', 'support'],
    ]);
    const [{ username }] = await db.query<{ username: string }[]>(
      `SELECT username FROM users WHERE id = $1`,
      [user.userId],
    );
    const spy = jestSpyOnZitadel(t);
    const res = await variables(admin.token, user.userId);
    expect(spy.calls()).toBe(0);
    expect(res.json()).toEqual({
      user_id: user.userId,
      user_name: username,
      user_email: expect.any(String),
      role: 'manager',
      roles: ['manager', 'support', 'user'],
      language: 'pt-BR',
      timezone: 'America/Sao_Paulo',
    });
    expect(highestRole(['user', 'admin', 'manager'])).toBe('admin');
    expect(highestRole(['billing', 'auditor'])).toBe('auditor');
  });

  it('lets a user read only their own, and answers 404 and 400 like every :id route', async () => {
    const [user, other] = await Promise.all([signedInUser(t), signedInUser(t)]);
    expect((await variables(user.token, user.userId)).statusCode).toBe(200);
    expectProblem(await variables(other.token, user.userId), 403, 'forbidden');
    expectProblem(await variables(admin.token, randomUUID()), 404, 'user_not_found');
    expectProblem(await variables(admin.token, 'not-a-uuid'), 400, 'invalid_request');
    expectProblem(await t.http({ method: 'GET', url: '/api/users/me/variables' }), 401, 'unauthorized');
  });
});

/** Counts calls to the identity provider's client while the variables are read. */
function jestSpyOnZitadel(t: TestApp) {
  const client: Record<string, unknown> = t.app.get<ZitadelClient, Record<string, unknown>>(ZitadelClient);
  let calls = 0;
  const proto = Object.getPrototypeOf(client) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const original = client[name];
    if (name === 'constructor' || typeof original !== 'function') continue;
    client[name] = (...args: unknown[]) => {
      calls++;
      return (original as (...a: unknown[]) => unknown).apply(client, args);
    };
  }
  return { calls: () => calls };
}
