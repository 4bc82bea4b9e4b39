import { expect } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { ChangeFeedService } from '../../src/change-feed/change-feed.service.js';
import { SessionTokenService } from '../../src/auth/session-token.service.js';
import type { LoginSessionDto } from '../../src/auth/dto/login.dto.js';
import { SessionsService } from '../../src/sessions/sessions.service.js';
import { UsersService } from '../../src/users/users.service.js';
import { ZitadelClient } from '../../src/zitadel/zitadel.client.js';
import type { TestApp } from './test-app.js';

let counter = 0;

/** Unique per test run, worker and call: spec files share one database and one identity provider schema. */
export function uniqueName(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${process.pid}-${counter++}`;
}

export function strongPassword(): string {
  return `Pw-${randomBytes(6).toString('hex')}-Aa1!`;
}

/** A valid, unused body for `POST /api/users/register`. */
export function newRegistration(prefix = 'reg', displayName = 'New User') {
  const username = uniqueName(prefix);
  return {
    email: `${username}@example.test`,
    username,
    password: strongPassword(),
    display_name: displayName,
  };
}

export interface IdentityUser {
  email: string;
  username: string;
  password: string;
  zitadelId: string;
}

/** A new organization (tenant) in the identity provider; its id. */
export async function createOrganization(t: TestApp): Promise<string> {
  return (await t.app.get(ZitadelClient).addOrganization(uniqueName('org'))).orgId;
}

/**
 * A user created "in the Zitadel console": through the real client, in the identity provider; in the
 * configured organization unless `orgId` names another.
 */
export async function createIdentityUser(
  t: TestApp,
  options: { roles?: string[]; emailVerified?: boolean; orgId?: string } = {},
): Promise<IdentityUser> {
  const username = uniqueName(options.roles?.[0] ?? 'user');
  const email = `${username}@example.test`;
  const password = strongPassword();
  const zitadel = t.app.get(ZitadelClient);
  const { userId } = await zitadel.addHumanUser({
    orgId: options.orgId,
    username,
    email,
    givenName: 'Test',
    familyName: username,
    displayName: `Test ${username}`,
    password,
    emailVerification: options.emailVerified === false ? 'return_code' : 'verified',
  });
  if (options.roles?.length) await zitadel.setUserRoles(userId, options.roles, options.orgId);
  return { email, username, password, zitadelId: userId };
}

/** Just what the login body takes: it rejects unknown fields. */
export const credentials = (user: { email: string; password: string }) => ({
  email: user.email,
  password: user.password,
});

export async function loginOverHttp(
  t: TestApp,
  user: { email: string; password: string },
  headers: Record<string, string> = {},
): Promise<LoginSessionDto> {
  const res = await t.http({
    method: 'POST',
    url: '/api/users/login',
    payload: credentials(user),
    headers,
  });
  expect({ status: res.statusCode, body: res.json() }).toMatchObject({ status: 200 });
  return res.json();
}

export interface SignedInUser extends IdentityUser {
  userId: string;
  token: string;
  sessionId: string;
}

/** A user with a live session, the way login leaves one (local profile synced, session row, token). */
export async function signedInUser(
  t: TestApp,
  options: { roles?: string[]; orgId?: string } = {},
): Promise<SignedInUser> {
  const identity = await createIdentityUser(t, options);
  const session = await loginOverHttp(t, identity);
  return {
    ...identity,
    userId: session.user_id,
    token: session.session_token,
    sessionId: sessionIdOf(session.session_token),
  };
}

/** Another session for an existing user, without a round trip through the identity provider. */
export async function newSession(
  t: TestApp,
  userId: string,
  expiresAt = new Date(Date.now() + 3_600_000),
): Promise<{ token: string; sessionId: string }> {
  const session = await t.app.get(SessionsService).create({
    userId,
    expiresAt,
    authMethod: 'password',
    deviceInfo: 'Test on Jest',
    ipAddress: '127.0.0.1',
  });
  return {
    token: t.app.get(SessionTokenService).sign({ userId, sessionId: session.id, expiresAt }),
    sessionId: session.id,
  };
}

export function sessionIdOf(token: string): string {
  return (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { sid: string }).sid;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Changes a user's local status directly, as the admin operations of the users issue will. */
export async function setLocalStatus(t: TestApp, userId: string, status: string): Promise<void> {
  await writeDirectly(t, `UPDATE users SET status = $2 WHERE id = $1`, [userId, status]);
  expect(await t.app.get(UsersService).findById(userId)).toBeDefined();
}

/**
 * SQL run on the test's own connection, as an operator would, then the same barrier a write through the
 * API passes before it answers: the change notices have reached this app's caches when it returns.
 */
export async function writeDirectly(t: TestApp, sql: string, parameters: unknown[] = []): Promise<void> {
  await t.app.get(DataSource).query(sql, parameters);
  await t.app.get(ChangeFeedService).barrier();
}
