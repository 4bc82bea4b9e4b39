import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServiceProcess } from './support/service-process.js';

const ADMIN = { email: 'newcomer-admin@example.test', password: 'Newcomer-Adm1n-Passw0rd!' };
const USER_PASSWORD = 'SecurePassword123!';
const CLIENTS = 16;
/**
 * A hang detector, not a speed test: the old design answered 503 here after 10–19 s (the status checks
 * catch that). Sixteen users created at once cost sixteen argon2 hashes in the embedded identity provider,
 * seconds of CPU on two cores shared with the rest of the suite; the newcomer smoke of shared/ holds four
 * stories on a quiet machine to 2 s, and the slowest answer here is printed.
 */
const SLOW_MS = 20_000;

interface Answer {
  status: number;
  body: Record<string, unknown> | null;
}

/**
 * The newcomer's path as a test: the built service started exactly as `npm start` starts it (no
 * DATABASE_URL, no ZITADEL_URL, a fresh DATA_DIR), sixteen clients running the contract's whole admin
 * story at once; then a SIGTERM and a kill -9 in the middle of writes, after each of which every
 * acknowledged write is still there.
 */
describe('the newcomer path: npm start on the embedded defaults', () => {
  let dataDir: string;
  let service: ServiceProcess;
  const problems: string[] = [];
  let slowest = { ms: 0, what: '' };
  const env = () => ({
    DATA_DIR: dataDir,
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    REGISTRATION_ENABLED: 'true',
    // Sixteen clients on one address would meet the per-IP login and registration limits, which have
    // their own tests; everything else is the default configuration.
    RATE_LIMIT_LOGIN: '10000/1m',
    RATE_LIMIT_REGISTER: '10000/1m',
    RATE_LIMIT_USER_UPDATE: '10000/1m',
    RATE_LIMIT_USER_LIST: '10000/1m',
    RATE_LIMIT_DEFAULT: '100000/1m',
  });

  // Each test reports its own problems.
  beforeEach(() => {
    problems.length = 0;
  });
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'users-api-newcomer-'));
    service = await ServiceProcess.start(env());
    await service.ready();
  }, 90_000);
  afterAll(async () => {
    await service?.stop('SIGTERM');
    await rm(dataDir, { recursive: true, force: true });
  });

  async function call(
    method: string,
    path: string,
    options: { token?: string; body?: unknown; expect: number | number[] },
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const started = Date.now();
    const res = await fetch(service.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    const ms = Date.now() - started;
    const what = `${method} ${path.replace(/[0-9a-f-]{36}/g, ':id')}`;
    if (ms > slowest.ms) slowest = { ms, what };
    if (ms > SLOW_MS) problems.push(`${what} took ${ms} ms`);
    const wanted = Array.isArray(options.expect) ? options.expect : [options.expect];
    if (!wanted.includes(res.status)) problems.push(`${what} → ${res.status} ${text.slice(0, 200)}`);
    let body: Record<string, unknown> | null = null;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body };
  }

  const login = async (email: string, password: string): Promise<string> =>
    (await call('POST', '/api/users/login', { body: { email, password }, expect: 200 })).body
      ?.session_token as string;

  /** The verification code the embedded identity provider "emailed" (it logs it, as docs/identity.md says). */
  async function emailCode(email: string): Promise<string> {
    const pattern = new RegExp(
      `Email verification code for ${email.replace(/[.+]/g, '\\$&')}: (\\S+?)["\\s]`,
    );
    for (let waited = 0; waited < 10_000; waited += 100) {
      const code = pattern.exec(service.output)?.[1];
      if (code) return code;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no verification code logged for ${email}`);
  }

  interface StoryOutcome {
    deletedUserId: string;
    keptUserId: string;
    keptDisplayName: string;
  }
  const outcomes: StoryOutcome[] = [];
  let adminToken: string;

  async function story(n: number): Promise<void> {
    const tag = `nc${n}x${Date.now().toString(36)}`;
    // An admin creates a user; the user signs in and uses their account.
    const created = await call('POST', '/api/users', {
      token: adminToken,
      body: {
        email: `${tag}@example.test`,
        username: tag,
        display_name: `Newcomer ${n}`,
        password: USER_PASSWORD,
        roles: ['user'],
      },
      expect: 201,
    });
    const id = created.body?.user_id as string;
    if (!id) return;
    const listed = await call('GET', `/api/users?search=${tag}`, { token: adminToken, expect: 200 });
    if ((listed.body?.total as number) !== 1)
      problems.push(`search ${tag}: total ${String(listed.body?.total)}`);
    const token = await login(`${tag}@example.test`, USER_PASSWORD);
    await call('GET', '/api/users/me', { token, expect: 200 });
    await call('PUT', `/api/users/${id}`, { token, body: { display_name: `Newcomer ${n} b` }, expect: 200 });
    await call('PUT', `/api/users/${id}/settings`, { token, body: { theme: 'dark' }, expect: 200 });
    await call('GET', `/api/users/${id}/settings`, { token, expect: 200 });
    await call('PUT', `/api/users/${id}`, {
      token: adminToken,
      body: { roles: ['user', 'manager'] },
      expect: 200,
    });
    await call('GET', `/api/users/${id}/sessions`, { token: adminToken, expect: 200 });
    await call('POST', `/api/users/${id}/suspend`, {
      token: adminToken,
      body: { reason: 'story' },
      expect: 200,
    });
    await call('GET', '/api/users/me', { token, expect: 401 });
    await call('POST', `/api/users/${id}/activate`, { token: adminToken, expect: 200 });
    const again = await login(`${tag}@example.test`, USER_PASSWORD);
    await call('POST', '/api/users/logout', { token: again, expect: 200 });
    await call('GET', '/api/users/me', { token: again, expect: 401 });
    await call('DELETE', `/api/users/${id}`, { token: adminToken, expect: 200 });
    await call('GET', `/api/users/${id}`, { token: adminToken, expect: 404 });

    // Someone registers on their own, verifies their address, signs in and keeps their account.
    const email = `${tag}-self@example.test`;
    const registered = await call('POST', '/api/users/register', {
      body: { email, username: `${tag}s`, password: USER_PASSWORD, display_name: `Self ${n}` },
      expect: 201,
    });
    const selfId = registered.body?.user_id as string;
    if (!selfId) return;
    await call('POST', '/api/users/verify-email', {
      body: { user_id: selfId, code: await emailCode(email) },
      expect: 200,
    });
    const own = await login(email, USER_PASSWORD);
    await call('PUT', `/api/users/${selfId}/settings`, { token: own, body: { theme: 'light' }, expect: 200 });
    await call('PUT', `/api/users/${selfId}`, {
      token: own,
      body: { display_name: `Kept ${n}` },
      expect: 200,
    });
    outcomes.push({ deletedUserId: id, keptUserId: selfId, keptDisplayName: `Kept ${n}` });
  }

  /** Everything the stories were told was done, read back after a restart. */
  async function expectOutcomesKept(): Promise<void> {
    const token = await login(ADMIN.email, ADMIN.password);
    for (const outcome of outcomes) {
      await call('GET', `/api/users/${outcome.deletedUserId}`, { token, expect: 404 });
      const kept = await call('GET', `/api/users/${outcome.keptUserId}`, { token, expect: 200 });
      expect(kept.body).toMatchObject({ display_name: outcome.keptDisplayName, status: 'active' });
      const settings = await call('GET', `/api/users/${outcome.keptUserId}/settings`, { token, expect: 200 });
      expect(settings.body).toMatchObject({ theme: 'light' });
    }
  }

  it(`${CLIENTS} clients run the admin story at once: every answer the expected one, none 5xx or slow`, async () => {
    adminToken = await login(ADMIN.email, ADMIN.password);
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => story(n)));
    console.log(`newcomer story: ${CLIENTS} clients, slowest answer ${slowest.ms} ms (${slowest.what})`);
    if (problems.length) {
      console.log(
        service.output
          .split('\n')
          .filter((l) => /session\(s\) ended|now (inactive|suspended)|"level":[45]0/.test(l))
          .join('\n')
          .slice(-5000),
      );
    }
    expect(problems).toEqual([]);
    expect(outcomes).toHaveLength(CLIENTS);
  }, 300_000);

  it('after SIGTERM and a new start, every acknowledged write is there', async () => {
    const stoppedAt = Date.now();
    const code = await service.stop('SIGTERM');
    if (code !== 0)
      console.log(`exit ${code} after ${Date.now() - stoppedAt} ms:\n${service.output.slice(-4000)}`);
    expect(code).toBe(0);
    service = await ServiceProcess.start(env());
    await service.ready();
    await expectOutcomesKept();
    expect(problems).toEqual([]);
  }, 120_000);

  it('after kill -9 in the middle of writes and a new start, every acknowledged write is there', async () => {
    const token = await login(ADMIN.email, ADMIN.password);
    const acknowledged = new Map<string, string>(); // user id → last default_bot answered 200
    const inFlight = new Map<string, string>();
    const createdIds: string[] = [];
    let stop = false;
    const writer = async (userId: string) => {
      for (let k = 0; !stop; k++) {
        const value = `bot-${k}`;
        inFlight.set(userId, value);
        try {
          const res = await fetch(`${service.baseUrl}/api/users/${userId}/settings`, {
            method: 'PUT',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ default_bot: value }),
          });
          if (res.status === 200) acknowledged.set(userId, value);
        } catch {
          return; // the service is gone
        }
      }
    };
    const creator = async () => {
      for (let k = 0; !stop; k++) {
        const tag = `k9${k}x${Date.now().toString(36)}`;
        try {
          const res = await fetch(`${service.baseUrl}/api/users`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              email: `${tag}@example.test`,
              username: tag,
              display_name: 'Kill Nine',
              password: USER_PASSWORD,
            }),
          });
          if (res.status === 201) createdIds.push(((await res.json()) as { user_id: string }).user_id);
        } catch {
          return;
        }
      }
    };
    const writers = [...outcomes.map((o) => writer(o.keptUserId)), creator()];
    await new Promise((r) => setTimeout(r, 1_500));
    service.child.kill('SIGKILL');
    await service.exited;
    stop = true;
    await Promise.all(writers);
    expect(acknowledged.size).toBeGreaterThan(0);

    service = await ServiceProcess.start(env());
    await service.ready();
    const admin = await login(ADMIN.email, ADMIN.password);
    for (const [userId, value] of acknowledged) {
      const settings = await call('GET', `/api/users/${userId}/settings`, { token: admin, expect: 200 });
      // The last acknowledged value, or the one in flight when the process died (it may have committed).
      expect([value, inFlight.get(userId)]).toContain(settings.body?.default_bot);
    }
    for (const id of createdIds) await call('GET', `/api/users/${id}`, { token: admin, expect: 200 });
    await expectOutcomesKept();
    expect(problems).toEqual([]);
  }, 180_000);
});
