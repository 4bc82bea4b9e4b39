import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Response } from 'light-my-request';
import { DataSource } from 'typeorm';
import { ZitadelReconciler } from '../src/zitadel-sync/zitadel-reconciler.js';
import { ZitadelClient } from '../src/zitadel/zitadel.client.js';
import { DEV_IDENTITY_PROVIDER, type RunningDevIdentityProvider } from '../src/zitadel/zitadel.module.js';
import {
  bearer,
  createIdentityUser,
  credentials,
  loginOverHttp,
  newRegistration,
  newSession,
  signedInUser,
  strongPassword,
  uniqueName,
  type IdentityUser,
  type SignedInUser,
  writeDirectly,
} from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** The codes Zitadel "mails" arrive after the 202 (the call runs after the answer): wait for one. */
async function eventually<T>(
  read: () => Promise<T>,
  accept: (value: T) => boolean,
  what: string,
): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = await read();
    if (accept(value)) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=',
  'base64',
);

const fieldErrors = (res: Response) => res.json<{ errors?: { field: string; message: string }[] }>().errors;

describe('account self-service', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;

  beforeAll(async () => {
    t = await startTestApp();
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  const me = (token: string) => t.http({ method: 'GET', url: '/api/users/me', headers: bearer(token) });
  const login = (user: { email: string; password: string }) =>
    t.http({ method: 'POST', url: '/api/users/login', payload: credentials(user) });
  const auditActions = async (userId: string) =>
    (
      await t.app
        .get(DataSource)
        .query<{ action: string }[]>(
          `SELECT action FROM audit_events WHERE target_user_id = $1 ORDER BY created_at`,
          [userId],
        )
    ).map((row) => row.action);

  describe('forgotten password', () => {
    const requestReset = (email: string) =>
      t.http({ method: 'POST', url: '/api/users/password/reset', payload: { email } });
    const confirm = (payload: object) =>
      t.http({ method: 'POST', url: '/api/users/password/reset/confirm', payload });

    async function resetCode(user: IdentityUser, previous?: string): Promise<string> {
      const res = await requestReset(user.email);
      expect(res.statusCode).toBe(202);
      return (await eventually(
        () => idp.lastPasswordCode(user.zitadelId),
        (code) => code !== undefined && code !== previous,
        'the reset code',
      ))!;
    }

    it('answers 202 with the same body for a known and an unknown address', async () => {
      const user = await signedInUser(t);
      const known = await requestReset(user.email);
      const unknown = await requestReset(`${uniqueName('nobody')}@example.test`);
      expect(known.statusCode).toBe(202);
      expect(unknown.statusCode).toBe(202);
      expect(unknown.body).toBe(known.body);
      expect(known.json()).toEqual({ status: 'accepted', message: expect.any(String) });
    });

    it('sets the new password with the mailed code and ends every session', async () => {
      const user = await signedInUser(t);
      const second = await loginOverHttp(t, user);
      const code = await resetCode(user);
      const next = strongPassword();

      const wrong = await confirm({ email: user.email, code: 'WRONG1', new_password: next });
      expectProblem(wrong, 422, 'validation_error');
      expect(fieldErrors(wrong)).toEqual([{ field: 'code', message: 'The code is wrong or expired' }]);

      const ok = await confirm({ user_id: user.userId, code, new_password: next });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toMatchObject({ status: 'password_reset' });
      expect((await me(user.token)).statusCode).toBe(401);
      expect((await me(second.session_token)).statusCode).toBe(401);
      expect((await login(user)).statusCode).toBe(401);
      expect((await login({ email: user.email, password: next })).statusCode).toBe(200);
      // The code worked once.
      expectProblem(
        await confirm({ user_id: user.userId, code, new_password: strongPassword() }),
        422,
        'validation_error',
      );
      expect(await auditActions(user.userId)).toEqual(
        expect.arrayContaining(['user.password_reset_requested', 'user.password_reset']),
      );
    });

    it('answers an unknown account exactly as a wrong code', async () => {
      const user = await signedInUser(t);
      await resetCode(user);
      const known = await confirm({ email: user.email, code: 'WRONG1', new_password: strongPassword() });
      const unknown = await confirm({
        email: `${uniqueName('nobody')}@example.test`,
        code: 'WRONG1',
        new_password: strongPassword(),
      });
      expectProblem(unknown, 422, 'validation_error');
      expect(fieldErrors(unknown)).toEqual(fieldErrors(known));
      expect(unknown.json().detail).toBe(known.json().detail);
    });

    it('refuses an expired code', async () => {
      const user = await signedInUser(t);
      const code = await resetCode(user);
      await idp.expireCodes(user.zitadelId);
      expectProblem(
        await confirm({ email: user.email, code, new_password: strongPassword() }),
        422,
        'validation_error',
      );
      expect((await login(user)).statusCode).toBe(200);
    });

    it('kills a code after 5 wrong guesses; a new reset brings a working one', async () => {
      const user = await signedInUser(t);
      const code = await resetCode(user);
      for (let i = 0; i < 5; i++) {
        const wrong = await confirm({ email: user.email, code: `WRONG${i}`, new_password: strongPassword() });
        expect(wrong.statusCode).toBe(422);
      }
      expectProblem(
        await confirm({ email: user.email, code, new_password: strongPassword() }),
        422,
        'validation_error',
      );
      const fresh = await resetCode(user, code);
      const next = strongPassword();
      expect((await confirm({ email: user.email, code: fresh, new_password: next })).statusCode).toBe(200);
      expect((await login({ email: user.email, password: next })).statusCode).toBe(200);
    });

    it('refuses a weak new password naming the rule, before Zitadel sees the code', async () => {
      const user = await signedInUser(t);
      const code = await resetCode(user);
      const weak = await confirm({ email: user.email, code, new_password: 'short' });
      expectProblem(weak, 422, 'validation_error');
      expect(fieldErrors(weak)).toEqual([
        {
          field: 'new_password',
          message:
            'new_password must be at least 8 characters long; must contain an upper-case letter; ' +
            'must contain a digit; must contain a symbol',
        },
      ]);
      // Zitadel never saw it: the code still works.
      expect(await idp.lastPasswordCode(user.zitadelId)).toBe(code);
      expect((await confirm({ email: user.email, code, new_password: strongPassword() })).statusCode).toBe(
        200,
      );
    });

    it('needs exactly one of user_id and email', async () => {
      const both = await confirm({
        user_id: '00000000-0000-4000-8000-000000000000',
        email: 'a@b.test',
        code: 'X',
        new_password: strongPassword(),
      });
      expectProblem(both, 422, 'validation_error');
      expectProblem(await confirm({ code: 'X', new_password: strongPassword() }), 422, 'validation_error');
    });
  });

  describe('change password', () => {
    const change = (token: string, payload: object) =>
      t.http({ method: 'POST', url: '/api/users/me/password', headers: bearer(token), payload });

    it('checks the current password, keeps this session and ends the others', async () => {
      const user = await signedInUser(t);
      const other = await loginOverHttp(t, user);
      const next = strongPassword();
      expectProblem(
        await change(user.token, { current_password: 'Wrong-Passw0rd!', new_password: next }),
        403,
        'forbidden',
      );
      expect((await me(other.session_token)).statusCode).toBe(200);

      const ok = await change(user.token, { current_password: user.password, new_password: next });
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ status: 'password_changed', terminated_sessions: 1 });
      expect((await me(user.token)).statusCode).toBe(200);
      expect((await me(other.session_token)).statusCode).toBe(401);
      expect((await login(user)).statusCode).toBe(401);
      expect((await login({ email: user.email, password: next })).statusCode).toBe(200);
      expect(await auditActions(user.userId)).toContain('user.password_changed');
    });

    it('refuses a weak new password with 422 naming the rule', async () => {
      const user = await signedInUser(t);
      const res = await change(user.token, { current_password: user.password, new_password: 'alllowercase' });
      expectProblem(res, 422, 'validation_error');
      expect(fieldErrors(res)).toEqual([
        {
          field: 'new_password',
          message:
            'new_password must contain an upper-case letter; must contain a digit; must contain a symbol',
        },
      ]);
      expect((await login(user)).statusCode).toBe(200);
    });
  });

  describe('change email', () => {
    const changeEmail = (token: string, email: string, url = '/api/users/me/email') =>
      t.http({ method: 'PUT', url, headers: bearer(token), payload: { email } });
    const verify = (token: string, code: string) =>
      t.http({
        method: 'POST',
        url: '/api/users/me/email/verify',
        headers: bearer(token),
        payload: { code },
      });

    async function reconcile(): Promise<void> {
      // Another spec file may hold the reconciliation lock for a moment.
      await eventually(
        () => t.app.get(ZitadelReconciler).run(),
        (result) => !result.skipped,
        'a reconciliation',
      );
    }

    it('keeps the old address until the code is verified, then switches', async () => {
      const user = await signedInUser(t);
      const newEmail = `${uniqueName('moved')}@example.test`;
      const pending = await changeEmail(user.token, newEmail);
      expect(pending.statusCode).toBe(202);
      expect(pending.json()).toEqual({
        user_id: user.userId,
        status: 'pending_verification',
        email: user.email,
        pending_email: newEmail,
      });
      // Zitadel holds the new address, unverified; here the old one stays, even after a sync with Zitadel.
      expect(await t.app.get(ZitadelClient).getUser(user.zitadelId)).toMatchObject({
        email: newEmail,
        emailVerified: false,
      });
      await reconcile();
      expect((await me(user.token)).json()).toMatchObject({ email: user.email });
      expect((await login(user)).statusCode).toBe(200);

      expectProblem(await verify(user.token, 'WRONG1'), 422, 'validation_error');
      const code = (await idp.lastEmailCode(user.zitadelId))!;
      const ok = await verify(user.token, code);
      expect(ok.statusCode).toBe(200);
      expect(ok.json()).toEqual({ user_id: user.userId, status: 'verified', email: newEmail });
      expect((await me(user.token)).json()).toMatchObject({ email: newEmail });
      expect((await login({ email: newEmail, password: user.password })).statusCode).toBe(200);
      expect((await login(user)).statusCode).toBe(401);
      expectProblem(await verify(user.token, code), 409, 'conflict');
      expect(await auditActions(user.userId)).toEqual(
        expect.arrayContaining(['user.email_change_requested', 'user.email_changed']),
      );
    });

    it('answers 409 for an address in use or waiting for another account', async () => {
      const [user, other] = await Promise.all([signedInUser(t), signedInUser(t)]);
      expectProblem(await changeEmail(user.token, other.email.toUpperCase()), 409, 'conflict');
      const wanted = `${uniqueName('wanted')}@example.test`;
      expect((await changeEmail(other.token, wanted)).statusCode).toBe(202);
      expectProblem(await changeEmail(user.token, wanted), 409, 'conflict');
      // Nor can a registration take an address another account waits for.
      expectProblem(
        await t.http({
          method: 'POST',
          url: '/api/users/register',
          payload: { ...newRegistration('taken'), email: wanted },
        }),
        409,
        'conflict',
      );
      expectProblem(await changeEmail(user.token, user.email), 422, 'validation_error');
    });

    it('lets an admin start the change; the user confirms it', async () => {
      const [user, admin] = await Promise.all([signedInUser(t), signedInUser(t, { roles: ['admin'] })]);
      const newEmail = `${uniqueName('byadmin')}@example.test`;
      const res = await changeEmail(admin.token, newEmail, `/api/users/${user.userId}/email`);
      expect(res.statusCode).toBe(202);
      const code = (await idp.lastEmailCode(user.zitadelId))!;
      expect((await verify(user.token, code)).statusCode).toBe(200);
      expect((await me(user.token)).json()).toMatchObject({ email: newEmail });
    });

    it('has nothing to verify without a pending change', async () => {
      const user = await signedInUser(t);
      expectProblem(await verify(user.token, 'ABCDEF'), 409, 'conflict');
    });
  });

  describe('resend the verification code', () => {
    const resend = (email: string) =>
      t.http({ method: 'POST', url: '/api/users/verify-email/resend', payload: { email } });

    it('mails a new code to a pending registration, and answers everyone alike', async () => {
      const registration = newRegistration('resend');
      const registered = await t.http({ method: 'POST', url: '/api/users/register', payload: registration });
      expect(registered.statusCode).toBe(201);
      const userId = registered.json().user_id as string;
      const [{ zitadel_id: zitadelId }] = await t.app
        .get(DataSource)
        .query<{ zitadel_id: string }[]>(`SELECT zitadel_id FROM users WHERE id = $1`, [userId]);
      const first = await idp.lastEmailCode(zitadelId);

      const res = await resend(registration.email);
      const unknown = await resend(`${uniqueName('nobody')}@example.test`);
      const active = await resend((await createIdentityUser(t)).email);
      expect([res.statusCode, unknown.statusCode, active.statusCode]).toEqual([202, 202, 202]);
      expect(new Set([res.body, unknown.body, active.body]).size).toBe(1);

      const second = await eventually(
        () => idp.lastEmailCode(zitadelId),
        (code) => code !== first,
        'a new code',
      );
      const verified = await t.http({
        method: 'POST',
        url: '/api/users/verify-email',
        payload: { user_id: userId, code: second },
      });
      expect(verified.statusCode).toBe(200);
      expect(await auditActions(userId)).toContain('user.verification_resent');
    });

    it('revives a registration whose code died after 5 wrong guesses', async () => {
      const registration = newRegistration('revive');
      const registered = await t.http({ method: 'POST', url: '/api/users/register', payload: registration });
      const userId = registered.json<{ user_id: string }>().user_id;
      const [{ zitadel_id: zitadelId }] = await t.app
        .get(DataSource)
        .query<{ zitadel_id: string }[]>(`SELECT zitadel_id FROM users WHERE id = $1`, [userId]);
      const verify = (code: string) =>
        t.http({ method: 'POST', url: '/api/users/verify-email', payload: { user_id: userId, code } });
      const first = (await idp.lastEmailCode(zitadelId))!;
      for (let i = 0; i < 5; i++) expect((await verify(`WRONG${i}`)).statusCode).toBe(422);
      expect((await verify(first)).statusCode).toBe(422);

      expect((await resend(registration.email)).statusCode).toBe(202);
      const second = await eventually(
        () => idp.lastEmailCode(zitadelId),
        (code) => code !== undefined && code !== first,
        'a new code',
      );
      // The resend's bookkeeping (clearing the count) finishes after Zitadel answered: wait for its audit entry.
      await eventually(
        () => auditActions(userId),
        (actions) => actions.includes('user.verification_resent'),
        'the resend to finish',
      );
      expect((await verify(second!)).statusCode).toBe(200);
    });
  });

  describe('export', () => {
    it('returns everything held about the caller in one document', async () => {
      const user = await signedInUser(t);
      await t.http({
        method: 'PUT',
        url: `/api/users/${user.userId}/settings`,
        headers: bearer(user.token),
        payload: { theme: 'dark' },
      });
      await t.http({
        method: 'PUT',
        url: '/api/users/me/email',
        headers: bearer(user.token),
        payload: { email: `${uniqueName('exported')}@example.test` },
      });
      const res = await t.http({ method: 'GET', url: '/api/users/me/export', headers: bearer(user.token) });
      expect(res.statusCode).toBe(200);
      const body = res.json<{
        profile: unknown;
        settings: unknown;
        sessions: unknown[];
        audit_events: { action: string }[];
        avatar: unknown;
      }>();
      expect(body.profile).toMatchObject({
        user_id: user.userId,
        zitadel_id: user.zitadelId,
        email: user.email,
        pending_email: expect.stringMatching(/^exported-/),
        status: 'active',
      });
      expect(body.settings).toMatchObject({ theme: 'dark' });
      expect(body.sessions).toEqual([
        expect.objectContaining({ session_id: user.sessionId, status: 'active' }),
      ]);
      expect(body.audit_events.map((e) => e.action)).toContain('user.email_change_requested');
      expect(body.avatar).toEqual({ uploaded: false, content_type: null, sha256: null, updated_at: null });

      const upload = await t.http({
        method: 'PUT',
        url: `/api/users/${user.userId}/avatar`,
        headers: { ...bearer(user.token), 'content-type': 'image/png' },
        payload: PNG,
      });
      expect(upload.statusCode).toBe(200);
      const again = await t.http({ method: 'GET', url: '/api/users/me/export', headers: bearer(user.token) });
      expect(again.json<{ avatar: unknown }>().avatar).toEqual({
        uploaded: true,
        content_type: 'image/png',
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        updated_at: expect.any(String),
      });
      // Never a secret: no password, no session's ID token.
      expect(again.body).not.toContain(user.password);
      expect(again.body).not.toMatch(/id_?token/i);
    });
  });

  describe('export of an administrator', () => {
    it('lists the entries about the caller, not those they made about others', async () => {
      const [user, admin] = await Promise.all([signedInUser(t), signedInUser(t, { roles: ['admin'] })]);
      const renamed = await t.http({
        method: 'PUT',
        url: `/api/users/${user.userId}`,
        headers: bearer(admin.token),
        payload: { display_name: 'Renamed By Admin' },
      });
      expect(renamed.statusCode).toBe(200);
      const exportOf = async (token: string) =>
        (await t.http({ method: 'GET', url: '/api/users/me/export', headers: bearer(token) })).json<{
          audit_events: { action: string; target_user_id: string }[];
        }>().audit_events;
      expect(await exportOf(user.token)).toEqual([
        expect.objectContaining({ action: 'user.updated', target_user_id: user.userId }),
      ]);
      expect(await exportOf(admin.token)).toEqual([]);
    });
  });

  describe('erasure', () => {
    const erase = (token: string, payload?: object) =>
      t.http({ method: 'DELETE', url: '/api/users/me', headers: bearer(token), payload });

    async function ageSessions(user: SignedInUser): Promise<void> {
      await writeDirectly(
        t,
        `UPDATE sessions SET created_at = now() - interval '10 minutes' WHERE user_id = $1`,
        [user.userId],
      );
    }

    it('erases after a fresh login: gone in Zitadel, sessions ended, data deleted, audit redacted', async () => {
      const user = await signedInUser(t);
      const other = await newSession(t, user.userId);
      const admin = await signedInUser(t, { roles: ['admin'] });
      await t.http({
        method: 'PUT',
        url: `/api/users/${user.userId}`,
        headers: bearer(admin.token),
        payload: { display_name: 'Erasable Name' },
      });
      await t.http({
        method: 'PUT',
        url: `/api/users/${user.userId}/settings`,
        headers: bearer(user.token),
        payload: { theme: 'dark' },
      });

      const res = await erase(user.token);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ user_id: user.userId, status: 'erased' });
      expect((await me(user.token)).statusCode).toBe(401);
      expect((await me(other.token)).statusCode).toBe(401);
      expect(await t.app.get(ZitadelClient).getUser(user.zitadelId)).toBeNull();
      expect((await login(user)).statusCode).toBe(401);

      const db = t.app.get(DataSource);
      const [row] = await db.query<Record<string, unknown>[]>(
        `SELECT username, email, display_name, status FROM users WHERE id = $1`,
        [user.userId],
      );
      expect(row).toEqual({
        username: `erased-${user.userId}`,
        email: `erased-${user.userId}@erased.invalid`,
        display_name: null,
        status: 'deleted',
      });
      expect(await db.query(`SELECT 1 FROM user_settings WHERE user_id = $1`, [user.userId])).toEqual([]);
      const trail = await db.query<{ action: string; changes: Record<string, unknown> }[]>(
        `SELECT action, changes FROM audit_events WHERE target_user_id = $1 ORDER BY created_at`,
        [user.userId],
      );
      expect(trail.map((e) => e.action)).toEqual(['user.updated', 'user.erased']);
      expect(trail[0].changes).toEqual({ display_name: { before: '[erased]', after: '[erased]' } });
      expect(JSON.stringify(trail)).not.toContain('Erasable Name');
    });

    it('needs the password once the login is older than 5 minutes', async () => {
      const user = await signedInUser(t);
      await ageSessions(user);
      expectProblem(await erase(user.token), 403, 'forbidden');
      expectProblem(await erase(user.token, { password: 'Wrong-Passw0rd!' }), 403, 'forbidden');
      // A body that is sent is validated like any other.
      expectProblem(await erase(user.token, { password: ['x'] }), 422, 'validation_error');
      expectProblem(await erase(user.token, { confirm: true }), 422, 'validation_error');
      expect((await me(user.token)).statusCode).toBe(200);
      const res = await erase(user.token, { password: user.password });
      expect(res.statusCode).toBe(200);
      expect((await me(user.token)).statusCode).toBe(401);
    });
  });
});

describe('account self-service limits and policy', () => {
  let t: TestApp;
  let idp: RunningDevIdentityProvider;

  beforeAll(async () => {
    t = await startTestApp({
      RATE_LIMIT_LOGIN_FAILURES: '2/15m',
      RATE_LIMIT_ACCOUNT_RECOVERY: '3/15m',
      RATE_LIMIT_ACCOUNT_EMAILS: '1/1h',
    });
    idp = t.app.get<RunningDevIdentityProvider>(DEV_IDENTITY_PROVIDER);
  });
  afterAll(() => t.close());

  it('reads the password rules from Zitadel’s complexity policy', async () => {
    // Before any password request of this app, so its policy cache starts empty.
    idp.setPasswordComplexity({ minLength: 24, requiresSymbol: false });
    try {
      const res = await t.http({
        method: 'POST',
        url: '/api/users/register',
        payload: { ...newRegistration('policy'), password: 'Fairly-Long-Passw0rd' },
        remoteAddress: '192.0.2.50',
      });
      expectProblem(res, 422, 'validation_error');
      expect(fieldErrors(res)).toEqual([
        { field: 'password', message: 'password must be at least 24 characters long' },
      ]);
      const ok = await t.http({
        method: 'POST',
        url: '/api/users/register',
        payload: { ...newRegistration('policy'), password: 'Twenty-four-characters42' },
        remoteAddress: '192.0.2.51',
      });
      expect(ok.statusCode).toBe(201);
    } finally {
      idp.setPasswordComplexity({ minLength: 8, requiresSymbol: true });
    }
  });

  it('throttles wrong current passwords like failed logins', async () => {
    const user = await signedInUser(t);
    const change = (current: string) =>
      t.http({
        method: 'POST',
        url: '/api/users/me/password',
        headers: bearer(user.token),
        // Long enough for any policy the test above left in this app's cache.
        payload: { current_password: current, new_password: `${strongPassword()}-Long-Enough-9` },
      });
    expectProblem(await change('Wrong-Passw0rd-1!'), 403, 'forbidden');
    expectProblem(await change('Wrong-Passw0rd-2!'), 403, 'forbidden');
    const refused = await change(user.password);
    expectProblem(refused, 429, 'rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('limits recovery requests per address', async () => {
    const ask = () =>
      t.http({
        method: 'POST',
        url: '/api/users/password/reset',
        payload: { email: `${uniqueName('nobody')}@example.test` },
        remoteAddress: '198.51.100.7',
      });
    for (let i = 0; i < 3; i++) expect((await ask()).statusCode).toBe(202);
    expectProblem(await ask(), 429, 'rate_limited');
    const elsewhere = await t.http({
      method: 'POST',
      url: '/api/users/verify-email/resend',
      payload: { email: 'someone@example.test' },
      remoteAddress: '198.51.100.8',
    });
    expect(elsewhere.statusCode).toBe(202);
  });

  it('mails at most RATE_LIMIT_ACCOUNT_EMAILS codes per account, answering 202 all the same', async () => {
    const user = await signedInUser(t);
    const ask = (ip: string) =>
      t.http({
        method: 'POST',
        url: '/api/users/password/reset',
        payload: { email: user.email },
        remoteAddress: ip,
      });
    expect((await ask('203.0.113.20')).statusCode).toBe(202);
    const first = await eventually(
      () => idp.lastPasswordCode(user.zitadelId),
      (c) => c !== undefined,
      'a code',
    );
    expect((await ask('203.0.113.21')).statusCode).toBe(202);
    await sleep(500);
    expect(await idp.lastPasswordCode(user.zitadelId)).toBe(first);
  });
});
