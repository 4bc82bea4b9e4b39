import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { connect, type AddressInfo } from 'node:net';
import {
  bearer,
  credentials,
  createIdentityUser,
  newSession,
  signedInUser,
  type SignedInUser,
} from './support/identity.js';
import { expectProblem } from './support/problem.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** Sends raw bytes over a socket and returns the raw answer (the server closes the connection). */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    socket.write(request);
  });
}

function parseRaw(raw: string) {
  const [head, body] = raw.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => {
      const colon = line.indexOf(':');
      return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
    }),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

/** Issue 14, section 6 (all but the OIDC state binding). */
describe('response hygiene', () => {
  let t: TestApp;
  let user: SignedInUser;
  let admin: SignedInUser;

  beforeAll(async () => {
    t = await startTestApp();
    [user, admin] = await Promise.all([signedInUser(t), signedInUser(t, { roles: ['admin'] })]);
  });
  afterAll(() => t.close());

  it('sends Cache-Control: no-store with every token and every piece of personal data', async () => {
    const login = await createIdentityUser(t);
    const { sessionId } = await newSession(t, user.userId);
    const requests = [
      { method: 'POST', url: '/api/users/login', payload: credentials(login) },
      { method: 'POST', url: '/api/users/login', payload: { email: 'nobody@example.test', password: 'x' } },
      { method: 'GET', url: '/api/users/login/callback?code=x&state=y' },
      { method: 'GET', url: '/api/users/me', headers: bearer(user.token) },
      { method: 'GET', url: '/api/users', headers: bearer(admin.token) },
      { method: 'GET', url: `/api/users/${user.userId}`, headers: bearer(admin.token) },
      { method: 'GET', url: `/api/users/${user.userId}/sessions`, headers: bearer(user.token) },
      {
        method: 'DELETE',
        url: `/api/users/${user.userId}/sessions/${sessionId}`,
        headers: bearer(admin.token),
      },
      { method: 'GET', url: `/api/users/${user.userId}/settings`, headers: bearer(user.token) },
      {
        method: 'PUT',
        url: `/api/users/${user.userId}/settings`,
        headers: bearer(user.token),
        payload: { theme: 'dark' },
      },
      { method: 'GET', url: `/api/users/${user.userId}/audit`, headers: bearer(admin.token) },
      { method: 'GET', url: '/api/users/me' },
    ] as const;
    for (const request of requests) {
      const res = await t.http(request);
      expect({
        url: request.url,
        status: res.statusCode,
        cacheControl: res.headers['cache-control'],
      }).toEqual({
        url: request.url,
        status: res.statusCode,
        cacheControl: 'no-store',
      });
    }
    // Avatars are the exception: meant to be cached (privately), they say so themselves.
    const avatar = await t.http({
      method: 'GET',
      url: `/api/users/${user.userId}/avatar`,
      headers: bearer(user.token),
    });
    expect(avatar.headers['cache-control']).toBe('private, max-age=300');
  });

  it('answers a malformed URL with a problem document carrying the security headers', async () => {
    const res = await t.http({ method: 'GET', url: '/api/users/%E0%A4%A' });
    expectProblem(res, 400, 'invalid_request');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
  });

  it('answers headers over the limit with a 431 problem document carrying the security headers', async () => {
    const listening = await startTestApp();
    try {
      await listening.app.listen(0, '127.0.0.1');
      const { port } = listening.app.getHttpServer().address() as AddressInfo;
      const raw = await rawExchange(
        port,
        `GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`,
      );
      const res = parseRaw(raw);
      expect(res.status).toBe(431);
      expect(res.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(JSON.parse(res.body)).toMatchObject({
        status: 431,
        error: 'headers_too_large',
        request_id: res.headers['x-request-id'],
      });

      const garbage = parseRaw(await rawExchange(port, 'NOT HTTP AT ALL\r\n\r\n'));
      expect(garbage.status).toBe(400);
      expect(garbage.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(JSON.parse(garbage.body)).toMatchObject({ status: 400, error: 'invalid_request' });
    } finally {
      await listening.close();
    }
  });

  describe('HSTS and upgrade-insecure-requests only over TLS', () => {
    it('sends neither over plain HTTP, so /docs loads its assets over http on any address', async () => {
      for (const url of ['/docs', '/health/live', '/api/users/me']) {
        const res = await t.http({ method: 'GET', url, headers: { 'x-forwarded-proto': 'https' } });
        expect(res.headers['strict-transport-security']).toBeUndefined();
        expect(res.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      }
    });

    it('sends both when a trusted proxy says the request came over https', async () => {
      const behindProxy = await startTestApp({ TRUST_PROXY: 'loopback' });
      try {
        const tls = await behindProxy.http({
          method: 'GET',
          url: '/docs',
          remoteAddress: '127.0.0.1',
          headers: { 'x-forwarded-proto': 'https', 'x-forwarded-for': '203.0.113.9' },
        });
        expect(tls.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
        expect(tls.headers['content-security-policy']).toContain('upgrade-insecure-requests');
        const plain = await behindProxy.http({ method: 'GET', url: '/docs', remoteAddress: '127.0.0.1' });
        expect(plain.headers['strict-transport-security']).toBeUndefined();
      } finally {
        await behindProxy.close();
      }
    });
  });
});
