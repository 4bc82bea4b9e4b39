import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import jwt from 'jsonwebtoken';
import { DataSource } from 'typeorm';
import { SessionTokenService } from '../src/auth/session-token.service.js';
import {
  anyString,
  anyValue,
  hostile,
  invalid,
  mixed,
  operations,
  queryValue,
  type Operation,
} from './fuzz/openapi-arbitraries.js';
import {
  bearer,
  newSession,
  setLocalStatus,
  signedInUser,
  uniqueName,
  type SignedInUser,
} from './support/identity.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Property-based tests generated from openapi.json: every operation gets valid and invalid path
 * parameters, query strings, bodies and headers, as anonymous, user and admin callers and with broken or
 * foreign tokens. For every request: no 5xx; the response matches the documented schema (t.http throws
 * on a violation, which fails the property); and a rejected (4xx) write leaves the fuzzing users' rows in
 * users, user_settings, sessions and audit_events exactly as they were.
 *
 * FUZZ_RUNS sets the cases per operation (default below, `npm run fuzz -- --runs N` for longer runs);
 * FUZZ_SEED replays a run (fast-check prints the seed and path of a counterexample).
 */
const RUNS = Number(process.env.FUZZ_RUNS ?? 100);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** Login, registration and user creation pass through the identity provider (password hashing): fewer. */
const SLOW_OPERATIONS = new Set([
  'POST /api/users/login',
  'POST /api/users/register',
  'POST /api/users',
  // Each authenticated case erases a disposable user of its own (created in Zitadel first).
  'DELETE /api/users/me',
]);

type Caller = 'anonymous' | 'user' | 'admin';
type Auth =
  | { kind: 'none' }
  | { kind: 'token'; caller: 'user' | 'admin' }
  | { kind: 'fresh'; caller: 'user' | 'admin' }
  | { kind: 'expired' | 'foreign' | 'tampered' }
  | { kind: 'raw'; value: string };
type Target =
  { kind: 'fixture'; who: 'self' | 'admin' | 'user' | 'target' } | { kind: 'literal'; value: string };
type Body =
  | { kind: 'none' }
  | { kind: 'json'; value: unknown }
  | { kind: 'credentials'; who: 'admin' | 'user' | 'target'; rememberMe: unknown }
  | { kind: 'raw'; text: string; contentType: string | undefined }
  | { kind: 'too-large' };

interface FuzzRequest {
  auth: Auth;
  path: Record<string, Target>;
  query: Record<string, string | string[]>;
  ifMatch: string | undefined;
  /** Other headers a client controls: a request id to echo (or not), Accept. */
  extraHeaders: Record<string, string>;
  body: Body;
}

const PROTOTYPE_KEY_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype).concat('prototype'));

/** Header values travel as latin-1 text; anything else never reaches the service over a socket. */
const headerSafe = (value: string) => value.replace(/[^\x20-\x7e]/g, '?');

const malformedIds = fc.oneof(
  anyString.filter((s) => s.length > 0),
  fc.constantFrom('me', 'not-a-uuid', '123', 'g0000000-0000-0000-0000-000000000000', `${randomUUID()}x`),
);

function targetArb(name: string): fc.Arbitrary<Target> {
  const fixture = fc
    .constantFrom('self', 'admin', 'user', 'target')
    .map((who) => ({ kind: 'fixture' as const, who }));
  const literal = fc.oneof(fc.uuid(), malformedIds).map((value) => ({ kind: 'literal' as const, value }));
  return name === 'session_id'
    ? literal
    : fc.oneof({ weight: 3, arbitrary: fixture }, { weight: 2, arbitrary: literal });
}

const authArb: fc.Arbitrary<Auth> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: 'none' }) },
  {
    weight: 4,
    arbitrary: fc.constantFrom('user', 'admin').map((caller) => ({ kind: 'token' as const, caller })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('expired', 'foreign', 'tampered').map((kind) => ({ kind })),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.constantFrom(
          'Bearer',
          'Bearer ',
          'bearer',
          'Basic dXNlcjpwYXNz',
          'Bearer a.b.c',
          'Bearer e30.e30.',
        ),
        anyString.map((s) => `Bearer ${s}`),
        anyString,
      )
      .map((value) => ({ kind: 'raw' as const, value: headerSafe(value) })),
  },
);

const ifMatchArb = fc.oneof(
  { weight: 3, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    arbitrary: fc.oneof(
      fc.constantFrom('*', '"v1"', 'W/"v1"', '"v1", "v2"', '"v99999999999999999999"', '""', 'v1', ','),
      anyString.map(headerSafe),
    ),
  },
);

function bodyArb(op: Operation): fc.Arbitrary<Body> {
  if (!op.body) {
    if (op.method === 'GET') return fc.constant({ kind: 'none' });
    return fc.oneof(
      { weight: 4, arbitrary: fc.constant({ kind: 'none' }) },
      { weight: 1, arbitrary: anyValue.map((value) => ({ kind: 'json' as const, value })) },
    );
  }
  const arms: fc.WeightedArbitrary<Body>[] = [
    { weight: 12, arbitrary: mixed(op.body).map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: invalid(op.body).map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: hostile(op.body).map((value) => ({ kind: 'json' as const, value })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'none' }) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(anyString, fc.constantFrom('{', '{"email":', '[1,]', '{"a":1}{"b":2}', 'true')),
          fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
        )
        .map(([text, contentType]) => ({ kind: 'raw' as const, text, contentType })),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'too-large' }) },
  ];
  if (`${op.method} ${op.path}` === 'POST /api/users/login') {
    arms.push({
      weight: 2,
      arbitrary: fc
        .tuple(
          fc.constantFrom('admin', 'user', 'target'),
          fc.oneof(fc.constant(undefined), fc.boolean(), anyValue),
        )
        .map(([who, rememberMe]) => ({ kind: 'credentials' as const, who, rememberMe })),
    });
  }
  return fc.oneof(...arms);
}

function requestArb(op: Operation): fc.Arbitrary<FuzzRequest> {
  const pathParams = op.parameters.filter((p) => p.in === 'path');
  const queryParams = op.parameters.filter((p) => p.in === 'query');
  const query = fc
    .tuple(
      fc.record(Object.fromEntries(queryParams.map((p) => [p.name, queryValue(p.schema)])), {
        requiredKeys: [],
      }),
      // Parameters the operation does not know.
      fc.dictionary(
        fc.constantFrom('unknown', 'limit[]', '__proto__', 'sort', 'x'),
        fc.string({ maxLength: 8 }),
        {
          maxKeys: 1,
        },
      ),
    )
    .map(([known, extra]) => ({ ...extra, ...known }) as Record<string, string | string[]>);
  return fc.record({
    auth: authArb,
    path: fc.record(Object.fromEntries(pathParams.map((p) => [p.name, targetArb(p.name)]))),
    query: fc.oneof({ weight: 1, arbitrary: fc.constant({}) }, { weight: 3, arbitrary: query }),
    ifMatch: op.parameters.some((p) => p.in === 'header' && p.name === 'If-Match')
      ? ifMatchArb
      : fc.constant(undefined),
    extraHeaders: fc.record(
      {
        'x-request-id': fc.oneof(
          fc.constantFrom('req-1', 'a'.repeat(128), 'a'.repeat(129), '', ' ', 'x\ty', 'a/b+c=d:e@f'),
          anyString.map(headerSafe),
        ),
        accept: fc.constantFrom('application/json', 'text/html', '*/*', 'application/xml', ''),
      },
      { requiredKeys: [] },
    ),
    body: bodyArb(op),
  });
}

/** fast-check's report, with the 64 KiB strings of a counterexample cut to something readable. */
function report(result: fc.RunDetails<[FuzzRequest]>): string {
  const cut = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…(${text.length} chars)` : text);
  const example = JSON.stringify(result.counterexample?.[0], (_key, value: unknown) =>
    typeof value === 'string' ? cut(value) : value,
  );
  const error =
    result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
  return [
    `Property failed after ${result.numRuns} case(s); replay with FUZZ_SEED=${result.seed} (path ${result.counterexamplePath})`,
    `Counterexample: ${example}`,
    `Cause: ${error.split('\n').map(cut).join('\n')}`,
  ].join('\n');
}

describe('fuzzing every operation of openapi.json', () => {
  let t: TestApp;
  let admin: SignedInUser;
  let user: SignedInUser;
  let target: SignedInUser;
  let foreignToken: string;

  beforeAll(async () => {
    // No suspension lifted behind a request's back: the row digests must only change by requests.
    t = await startTestApp({ SUSPENSION_CHECK_INTERVAL_MS: '3600000' });
    [admin, user, target] = await Promise.all([
      signedInUser(t, { roles: ['admin'] }),
      signedInUser(t),
      signedInUser(t),
    ]);
    // Our claims and kid, someone else's key.
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const [header] = admin.token.split('.');
    const { kid, alg } = JSON.parse(Buffer.from(header, 'base64url').toString()) as {
      kid: string;
      alg: string;
    };
    const claims = JSON.parse(Buffer.from(admin.token.split('.')[1], 'base64url').toString()) as object;
    // An HS256 service gets a token made with another secret; an ES256/RS256 one with another key pair.
    foreignToken =
      alg === 'HS256'
        ? jwt.sign(claims, randomBytes(32), { algorithm: 'HS256', keyid: kid })
        : jwt.sign(claims, privateKey, {
            algorithm: alg === 'RS256' ? 'ES256' : (alg as 'ES256'),
            keyid: kid,
          });
  }, 60_000);
  afterAll(() => t?.close());

  const db = () => t.app.get(DataSource);

  /** A user this request may delete: never one of the fixtures whose tokens the other cases use. */
  async function disposableUser(): Promise<string> {
    const username = uniqueName('disposable');
    const res = await t.http({
      method: 'POST',
      url: '/api/users',
      headers: bearer(admin.token),
      payload: { email: `${username}@example.test`, username, display_name: 'Disposable' },
    });
    expect(res.statusCode).toBe(201);
    return res.json<{ user_id: string }>().user_id;
  }

  /** The rows a rejected write must not touch, as text; last_activity is written off the request path. */
  async function snapshot(userIds: string[], emails: string[]): Promise<string[]> {
    const rows = await db().query<{ row: string }[]>(
      `SELECT 'u' || to_jsonb(u)::text AS row FROM users u WHERE id = ANY($1::uuid[]) OR lower(email) = ANY($2::text[])
       UNION ALL SELECT 's' || (to_jsonb(s) - 'last_activity')::text FROM sessions s WHERE user_id = ANY($1::uuid[])
       UNION ALL SELECT 'c' || to_jsonb(c)::text FROM user_settings c WHERE user_id = ANY($1::uuid[])
       UNION ALL SELECT 'a' || to_jsonb(a)::text FROM audit_events a
         WHERE target_user_id = ANY($1::uuid[]) OR actor_user_id = ANY($1::uuid[])
       ORDER BY 1`,
      [userIds, emails.map((e) => e.toLowerCase())],
    );
    return rows.map((r) => r.row);
  }

  async function send(
    op: Operation,
    req: FuzzRequest,
    http: (options: InjectOptions) => Promise<LightMyRequestResponse>,
  ): Promise<void> {
    const route = `${op.method} ${op.path}`;
    const caller: Caller =
      req.auth.kind === 'token' || req.auth.kind === 'fresh' ? req.auth.caller : 'anonymous';
    const ids = { admin: admin.userId, user: user.userId, target: target.userId };
    const self = caller === 'admin' ? admin.userId : user.userId;
    const fixtureIds = [admin.userId, user.userId, target.userId];

    // Resolve path parameters, steering writes that would destroy a fixture to harmless targets.
    const resolved: Record<string, string> = {};
    let id: string | undefined;
    const idTarget = req.path.id;
    if (idTarget) {
      id = idTarget.kind === 'literal' ? idTarget.value : idTarget.who === 'self' ? self : ids[idTarget.who];
      const fixture = id === user.userId || id === admin.userId || id === target.userId;
      const body =
        req.body.kind === 'json' && req.body.value !== null && typeof req.body.value === 'object'
          ? req.body.value
          : {};
      if (route === 'DELETE /api/users/{id}' && (id === user.userId || id === target.userId)) {
        id = await disposableUser();
      } else if (route === 'POST /api/users/{id}/suspend' && id === user.userId) {
        id = target.userId;
      } else if (route === 'DELETE /api/users/{id}/sessions' && fixture && id !== target.userId) {
        id = target.userId;
      } else if (
        route === 'PUT /api/users/{id}' &&
        caller === 'admin' &&
        (id === admin.userId || id === user.userId) &&
        ('roles' in body || 'status' in body)
      ) {
        id = target.userId;
      }
      resolved.id = id;
    }
    const sessionTarget = req.path.session_id;
    if (sessionTarget?.kind === 'literal') {
      // A well-formed session id is sometimes a live session of the path's user, made for this case.
      resolved.session_id =
        fixtureIds.includes(id!) && /^[0-9a-f-]{36}$/.test(sessionTarget.value) && sessionTarget.value < '8'
          ? (await newSession(t, id!)).sessionId
          : sessionTarget.value;
    }

    const headers: Record<string, string> = {};
    switch (req.auth.kind) {
      case 'none':
        break;
      case 'token':
      case 'fresh':
        // Logout ends the session it is called with: it gets a session of its own.
        if (req.auth.kind === 'fresh' || route === 'POST /api/users/logout') {
          headers.authorization = `Bearer ${(await newSession(t, req.auth.caller === 'admin' ? admin.userId : user.userId)).token}`;
        } else {
          headers.authorization = `Bearer ${(req.auth.caller === 'admin' ? admin : user).token}`;
        }
        break;
      case 'expired':
        headers.authorization = `Bearer ${t.app.get(SessionTokenService).sign({ userId: user.userId, sessionId: user.sessionId, expiresAt: new Date(Date.now() - 60_000) })}`;
        break;
      case 'foreign':
        headers.authorization = `Bearer ${foreignToken}`;
        break;
      case 'tampered': {
        const [h, p, s] = admin.token.split('.');
        headers.authorization = `Bearer ${h}.${p}.${s.slice(0, -4)}${s.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
        break;
      }
      case 'raw':
        headers.authorization = req.auth.value;
        break;
    }
    // An erasure with a valid token (a young session needs no password) would erase a fixture: it erases
    // a disposable active user instead, through a session of its own. `DELETE /api/users/{id}` with the
    // literal id `me` is that route too.
    const erasure =
      route === 'DELETE /api/users/me' || (route === 'DELETE /api/users/{id}' && resolved.id === 'me');
    if (erasure && (req.auth.kind === 'token' || req.auth.kind === 'fresh')) {
      const victim = await disposableUser();
      await setLocalStatus(t, victim, 'active');
      headers.authorization = `Bearer ${(await newSession(t, victim)).token}`;
    }
    if (req.ifMatch !== undefined) headers['if-match'] = req.ifMatch;
    Object.assign(headers, req.extraHeaders);

    let payload: string | undefined;
    switch (req.body.kind) {
      case 'none':
        break;
      case 'json':
        payload = JSON.stringify(req.body.value) ?? 'null';
        headers['content-type'] = 'application/json';
        break;
      case 'credentials': {
        const who = { admin, user, target }[req.body.who];
        payload = JSON.stringify({
          email: who.email,
          password: who.password,
          remember_me: req.body.rememberMe,
        });
        headers['content-type'] = 'application/json';
        break;
      }
      case 'raw':
        payload = req.body.text;
        if (req.body.contentType) headers['content-type'] = req.body.contentType;
        break;
      case 'too-large':
        payload = JSON.stringify({ email: 'a@example.test', padding: 'x'.repeat(1_100_000) });
        headers['content-type'] = 'application/json';
        break;
    }

    const path = op.path.replace(/\{(\w+)\}/g, (_, name: string) =>
      // Through UTF-8 and back: a lone surrogate becomes U+FFFD, as on the wire.
      encodeURIComponent(Buffer.from(resolved[name] ?? '').toString()),
    );
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(req.query)) {
      for (const v of Array.isArray(value) ? value : [value]) search.append(key, v);
    }
    const url = search.size ? `${path}?${search.toString()}` : path;

    const write = op.method !== 'GET';
    const watched = [...fixtureIds, ...(id && /^[0-9a-f-]{36}$/i.test(id) ? [id] : [])];
    const sentEmail =
      req.body.kind === 'json' ? (req.body.value as { email?: unknown } | null)?.email : undefined;
    // PostgreSQL text cannot hold NUL, so such an address cannot be stored (nor compared in the snapshot).
    const emails = typeof sentEmail === 'string' && !sentEmail.includes('\u0000') ? [sentEmail] : [];
    const before = write ? await snapshot(watched, emails) : [];

    const res = await http({ method: op.method, url, headers, payload });

    const described = `${op.method} ${url.slice(0, 300)} as ${caller} (${req.auth.kind}) → ${res.statusCode} ${res.body.slice(0, 300)}`;
    if (res.statusCode >= 500) throw new Error(`5xx: ${described}`);
    // A key named like an Object.prototype member is an unknown field like any other: never accepted.
    const sent = req.body.kind === 'json' ? req.body.value : undefined;
    if (
      op.body &&
      res.statusCode < 300 &&
      sent !== null &&
      typeof sent === 'object' &&
      !Array.isArray(sent) &&
      Object.keys(sent).some((key) => PROTOTYPE_KEY_NAMES.has(key))
    ) {
      throw new Error(`prototype-named key accepted: ${described}`);
    }
    // Every response carries a request id, the caller's own when it is a well-formed one (docs/api.md).
    const sentId = req.extraHeaders['x-request-id'];
    const echoed = res.headers['x-request-id'];
    if (typeof echoed !== 'string' || !echoed) throw new Error(`No X-Request-Id: ${described}`);
    if (sentId !== undefined && /^[A-Za-z0-9._:@/+=-]{1,128}$/.test(sentId) && echoed !== sentId)
      throw new Error(`X-Request-Id ${sentId} answered as ${echoed}: ${described}`);
    // A suspended target would turn every later suspend into 409 and hide the paths behind it.
    if (write && res.statusCode < 300 && id === target.userId) {
      const [row] = await db().query<{ status: string }[]>(`SELECT status FROM users WHERE id = $1`, [id]);
      if (row?.status === 'suspended') {
        const reactivated = await t.http({
          method: 'POST',
          url: `/api/users/${id}/activate`,
          headers: bearer(admin.token),
        });
        expect(reactivated.statusCode).toBe(200);
      }
    }
    if (write && res.statusCode >= 400) {
      const after = await snapshot(watched, emails);
      if (JSON.stringify(after) !== JSON.stringify(before)) {
        const gone = before.filter((r) => !after.includes(r));
        const added = after.filter((r) => !before.includes(r));
        throw new Error(
          `A rejected write changed the database: ${described}\n- ${gone.join('\n- ')}\n+ ${added.join('\n+ ')}`,
        );
      }
    }
  }

  const ops = operations();

  it('derives a request generator for every documented operation', () => {
    expect(ops.length).toBeGreaterThanOrEqual(20);
    for (const op of ops) expect(() => fc.sample(requestArb(op), 5)).not.toThrow();
  });

  it('fails the property when a response breaks the contract or is a 5xx (the properties can fail)', async () => {
    const op = ops.find((o) => o.method === 'GET' && o.path === '/api/users/me')!;
    const breaking = () =>
      Promise.reject<LightMyRequestResponse>(
        new Error('Response breaks openapi.json: GET /api/users/me → 200: /email must be string'),
      );
    const failing = async (options: InjectOptions) =>
      ({ ...(await t.http(options)), statusCode: 500 }) as LightMyRequestResponse;
    for (const http of [breaking, failing]) {
      const result = await fc.check(
        fc.asyncProperty(requestArb(op), (req) => send(op, req, http)),
        { numRuns: 3 },
      );
      expect(result.failed).toBe(true);
    }
  });

  for (const op of ops) {
    const route = `${op.method} ${op.path}`;
    const runs = SLOW_OPERATIONS.has(route) ? Math.max(1, Math.round(RUNS / 3)) : RUNS;
    it(
      `${route}: no 5xx, documented responses, no partial writes (${runs} cases)`,
      async () => {
        const result = await fc.check(
          fc.asyncProperty(requestArb(op), (req) => send(op, req, t.http)),
          { numRuns: runs, seed: SEED, endOnFailure: true },
        );
        if (result.failed) throw new Error(report(result));
      },
      Math.max(30_000, runs * 250),
    );
  }
});
