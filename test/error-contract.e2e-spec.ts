import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  Body,
  Controller,
  Get,
  Module,
  Param,
  ParseUUIDPipe,
  Post,
  Query,
  SetMetadata,
} from '@nestjs/common';
import { Type } from 'class-transformer';
import { IsEmail, IsIn, IsInt, IsOptional, IsString, Max, Min, ValidateNested } from 'class-validator';
import { DataSource } from 'typeorm';
import { ACCESS_METADATA } from '../src/common/access.js';
import { ApiError } from '../src/common/errors/api-error.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { expectProblem } from './support/problem.js';

class NotificationsBody {
  @IsIn(['none', 'daily', 'weekly'])
  digest!: string;
}

class CreateThingBody {
  @IsEmail()
  email!: string;

  @IsOptional()
  @ValidateNested()
  @Type(() => NotificationsBody)
  notifications?: NotificationsBody;
}

class ListQuery {
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(100)
  limit?: number;

  @IsOptional()
  @IsString()
  search?: string;
}

const SECRET = 'password=hunter2 at db.internal:5432';

/** Throwaway routes mounted inside the real application pipeline, one per failure the filter must shape. */
@Controller('test-errors')
@SetMetadata(ACCESS_METADATA, 'public')
class FailingController {
  constructor(private readonly dataSource: DataSource) {}

  @Post('things')
  create(@Body() body: CreateThingBody) {
    return { ok: true, email: body.email };
  }

  @Get('things')
  list(@Query() query: ListQuery) {
    return { limit: query.limit ?? 50 };
  }

  @Get('things/:id')
  get(@Param('id', new ParseUUIDPipe()) id: string) {
    return { id };
  }

  @Get('crash')
  crash() {
    throw new Error(`boom: ${SECRET}`);
  }

  @Get('sql')
  async sql(): Promise<unknown> {
    return this.dataSource.query<unknown>(
      `SELECT * FROM table_that_does_not_exist_${'x'} WHERE secret = 'hunter2'`,
    );
  }

  @Get('unique')
  async unique() {
    await this.dataSource.query(`CREATE TEMP TABLE t (v int UNIQUE); INSERT INTO t VALUES (1), (1)`);
  }

  @Get('user')
  user() {
    throw ApiError.userNotFound();
  }
}

@Module({ controllers: [FailingController] })
class FailingModule {}

describe('error contract', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ BODY_LIMIT_BYTES: '2048' }, [FailingModule]);
  });
  afterAll(() => t.close());

  it('answers malformed JSON with 400 invalid_request as a problem document', async () => {
    const res = await t.http({
      method: 'POST',
      url: '/test-errors/things',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": "a@b.c",',
    });
    expectProblem(res, 400, 'invalid_request');
    expect(res.json().detail).toMatch(/not valid JSON/);
  });

  it('answers a JSON body that is not an object with 400', async () => {
    const res = await t.http({ method: 'POST', url: '/test-errors/things', payload: [1, 2] });
    expectProblem(res, 400, 'invalid_request');
  });

  it('answers unknown routes with 404 not_found', async () => {
    const res = await t.http({ method: 'GET', url: '/api/nothing-here?x=1' });
    expectProblem(res, 404, 'not_found');
    expect(res.json().detail).toBe('No route matches GET /api/nothing-here');
    expect(res.json().instance).toBe('/api/nothing-here');
  });

  it('lists every failing field, nested ones by dotted path, with 422 validation_error', async () => {
    const res = await t.http({
      method: 'POST',
      url: '/test-errors/things',
      payload: { email: 'not-an-email', notifications: { digest: 'hourly' } },
    });
    expectProblem(res, 422, 'validation_error');
    const fields = (res.json().errors as { field: string }[]).map((e) => e.field);
    expect(fields).toEqual(['email', 'notifications.digest']);
  });

  it('rejects unknown body fields with 422', async () => {
    const res = await t.http({
      method: 'POST',
      url: '/test-errors/things',
      payload: { email: 'a@b.co', admin: true },
    });
    expectProblem(res, 422, 'validation_error');
    expect(res.json().errors[0].field).toBe('admin');
  });

  it('accepts a valid body', async () => {
    const res = await t.http({ method: 'POST', url: '/test-errors/things', payload: { email: 'a@b.co' } });
    expect(res.statusCode).toBe(201);
  });

  it('answers a query parameter of the wrong type with 400, an out-of-range one with 422', async () => {
    expectProblem(
      await t.http({ method: 'GET', url: '/test-errors/things?limit=abc' }),
      400,
      'invalid_request',
    );
    expectProblem(
      await t.http({ method: 'GET', url: '/test-errors/things?limit=1000' }),
      422,
      'validation_error',
    );
    const ok = await t.http({ method: 'GET', url: '/test-errors/things?limit=10' });
    expect(ok.json()).toEqual({ limit: 10 });
  });

  it('rejects unknown query parameters', async () => {
    expectProblem(
      await t.http({ method: 'GET', url: '/test-errors/things?sneaky=1' }),
      422,
      'validation_error',
    );
  });

  it('answers a malformed id with 400', async () => {
    const res = await t.http({ method: 'GET', url: '/test-errors/things/not-a-uuid' });
    expectProblem(res, 400, 'invalid_request');
  });

  it('answers a too-large body with 413 in the error shape', async () => {
    const res = await t.http({
      method: 'POST',
      url: '/test-errors/things',
      payload: { email: 'x'.repeat(4096) },
    });
    expectProblem(res, 413, 'payload_too_large');
  });

  it('answers an unsupported content type with 415', async () => {
    const res = await t.http({
      method: 'POST',
      url: '/test-errors/things',
      headers: { 'content-type': 'application/xml' },
      payload: '<a/>',
    });
    expectProblem(res, 415, 'unsupported_media_type');
  });

  it('leaks nothing from an internal error', async () => {
    const res = await t.http({ method: 'GET', url: '/test-errors/crash' });
    expectProblem(res, 500, 'internal_error');
    expect(res.body).not.toMatch(/hunter2|boom|stack|at .*\.ts/);
    expect(res.json().detail).toBe('An internal error occurred');
  });

  it('leaks no SQL or driver text from a database error', async () => {
    const res = await t.http({ method: 'GET', url: '/test-errors/sql' });
    expectProblem(res, 500, 'internal_error');
    expect(res.body).not.toMatch(/hunter2|SELECT|table_that_does_not_exist|relation/i);
  });

  it('turns a unique violation into 409 conflict', async () => {
    expectProblem(await t.http({ method: 'GET', url: '/test-errors/unique' }), 409, 'conflict');
  });

  it('keeps the specific user_not_found code', async () => {
    expectProblem(await t.http({ method: 'GET', url: '/test-errors/user' }), 404, 'user_not_found');
  });

  describe('X-Request-Id', () => {
    it('echoes a sane incoming id, in the header and the error body', async () => {
      const res = await t.http({ method: 'GET', url: '/nope', headers: { 'x-request-id': 'trace-abc.123' } });
      expect(res.headers['x-request-id']).toBe('trace-abc.123');
      expect(res.json().request_id).toBe('trace-abc.123');
    });

    it('replaces an insane one with a fresh id', async () => {
      const res = await t.http({
        method: 'GET',
        url: '/health/live',
        headers: { 'x-request-id': 'a b\tc<script>' },
      });
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      const long = await t.http({
        method: 'GET',
        url: '/health/live',
        headers: { 'x-request-id': 'x'.repeat(200) },
      });
      expect(long.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('generates one on every response, success included', async () => {
      const a = await t.http({ method: 'GET', url: '/health/live' });
      const b = await t.http({ method: 'GET', url: '/health/live' });
      expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
      expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
    });
  });

  it('sends security headers and no X-Powered-By', async () => {
    const res = await t.http({ method: 'GET', url: '/health/live' });
    expect(res.headers['x-powered-by']).toBeUndefined();
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
  });
});
