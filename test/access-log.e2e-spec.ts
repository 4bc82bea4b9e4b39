import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Controller, Get, Logger, Module, SetMetadata } from '@nestjs/common';
import { ACCESS_METADATA } from '../src/common/access.js';
import { bearer, signedInUser, type SignedInUser } from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

interface LogLine {
  level: number;
  msg: string;
  request_id?: string;
  req?: { method: string; url: string };
  res?: { status_code: number };
  route?: string;
  user_id?: string;
  duration_ms?: number;
  context?: string;
  [key: string]: unknown;
}

/** A route that logs while it handles the request, as services do through Nest's Logger. */
@Controller('test-logging')
@SetMetadata(ACCESS_METADATA, 'public')
class LoggingController {
  private readonly logger = new Logger('LoggingController');

  @Get('chatty')
  chatty() {
    this.logger.log('inside the handler');
    return { ok: true };
  }
}

@Module({ controllers: [LoggingController] })
class LoggingModule {}

describe('access log', () => {
  let t: TestApp;
  let user: SignedInUser;
  const output: string[] = [];
  const lines = () =>
    output
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as LogLine);
  /** Access lines are the ones pino-http writes when a response completes: they carry its duration. */
  const accessLines = (requestId: string) =>
    lines().filter((line) => line.request_id === requestId && line.duration_ms !== undefined);

  beforeAll(async () => {
    t = await startTestApp({ LOG_LEVEL: 'debug' }, [LoggingModule], {
      write: (chunk: string) => void output.push(chunk),
    });
    user = await signedInUser(t);
  });
  afterAll(() => t.close());

  it('writes one line per request: method, path, route template, status, duration, request id, user id', async () => {
    const res = await t.http({
      method: 'GET',
      url: `/api/users/${user.userId}?fields=secret-query-value`,
      headers: { ...bearer(user.token), 'x-request-id': 'trace-abc-123' },
    });
    expect(res.statusCode).toBe(200);
    const [line, ...more] = accessLines('trace-abc-123');
    expect(more).toEqual([]);
    expect(line).toMatchObject({
      level: 30,
      request_id: 'trace-abc-123',
      req: { method: 'GET', url: `/api/users/${user.userId}` },
      route: '/api/users/:id',
      res: { status_code: 200 },
      user_id: user.userId,
      msg: 'GET /api/users/:id 200',
    });
    expect(typeof line?.duration_ms).toBe('number');
    // Query strings (codes, cursors, search terms) stay out of the log.
    expect(output.join('')).not.toContain('secret-query-value');
  });

  it('logs anonymous, refused and unmatched requests too, without a user id', async () => {
    const refused = await t.http({ method: 'GET', url: '/api/users/me' });
    expect(refused.statusCode).toBe(401);
    const [line] = accessLines(String(refused.headers['x-request-id']));
    expect(line).toMatchObject({ level: 30, route: '/api/users/me', res: { status_code: 401 } });
    expect(line).not.toHaveProperty('user_id');

    const unknown = await t.http({ method: 'DELETE', url: '/no/such/thing' });
    expect(accessLines(String(unknown.headers['x-request-id']))).toMatchObject([
      { route: 'unmatched', res: { status_code: 404 }, msg: 'DELETE unmatched 404' },
    ]);
  });

  it('logs health and metrics requests at debug level', async () => {
    for (const url of ['/health/live', '/metrics']) {
      const res = await t.http({ method: 'GET', url });
      expect(accessLines(String(res.headers['x-request-id']))).toMatchObject([{ level: 20, route: url }]);
    }
  });

  it('gives lines logged inside the request the same request id', async () => {
    const res = await t.http({ method: 'GET', url: '/test-logging/chatty' });
    const requestId = String(res.headers['x-request-id']);
    const inside = lines().filter((line) => line.msg === 'inside the handler');
    expect(inside).toMatchObject([{ level: 30, request_id: requestId, context: 'LoggingController' }]);
    expect(accessLines(requestId)).toHaveLength(1);
  });

  it('never writes tokens, cookies or passwords', async () => {
    const res = await t.http({
      method: 'GET',
      url: '/api/users/me',
      headers: { ...bearer(user.token), cookie: 'session=cookie-secret-value' },
    });
    expect(res.statusCode).toBe(200);
    const written = output.join('');
    expect(written).not.toContain(user.token);
    expect(written).not.toContain(user.token.split('.')[2]);
    expect(written).not.toContain('cookie-secret-value');
    expect(written).not.toContain(user.password);
  });

  it("puts Nest's per-route start-up lines at debug level", () => {
    const mapped = lines().filter((line) => line.msg.startsWith('Mapped {'));
    expect(mapped.length).toBeGreaterThan(10);
    for (const line of mapped) expect(line.level).toBe(20);
  });
});
