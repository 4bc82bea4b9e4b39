import { generateKeyPairSync, KeyObject } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { create, toBinary } from '@bufbuild/protobuf';
import { ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { ApiError } from '../common/errors/api-error.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { JWKS_COOLDOWN_MS } from './zitadel-oidc.js';
import { InvalidCredentialsError, UserBlockedError, ZitadelClient, ZitadelError } from './zitadel.client.js';

// ---- a tiny Zitadel stand-in ---------------------------------------------------------------------

interface Recorded {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- a parsed request body, read by assertions
  json: any;
  form: URLSearchParams;
}
type Reply = { status?: number; body?: unknown } | 'hang';
type Handler = (request: Recorded) => Reply | Promise<Reply>;

/**
 * Zitadel's errors over Connect (connectrpc.com/docs/protocol, "Error end-stream" / unary errors): the HTTP
 * status of the code, `{code, message, details}` with the code's name, and Zitadel's `zitadel.v1.ErrorDetail`
 * (proto/zitadel/message.proto) as a binary Any: `{type, value: base64}`.
 */
const CONNECT_CODES: Record<number, [string, number]> = {
  3: ['invalid_argument', 400],
  5: ['not_found', 404],
  6: ['already_exists', 409],
  7: ['permission_denied', 403],
  9: ['failed_precondition', 400],
  13: ['internal', 500],
  14: ['unavailable', 503],
  16: ['unauthenticated', 401],
};
/** Zitadel's error text, which must never reach an ApiError. */
const ZITADEL_TEXT = 'internal zitadel detail 0xDEADBEEF';

function zitadelError(code: number, id: string, text = ZITADEL_TEXT): Reply {
  const [name, status] = CONNECT_CODES[code];
  const detail = toBinary(ErrorDetailSchema, create(ErrorDetailSchema, { id, message: text }));
  return {
    status,
    body: {
      code: name,
      message: `${text} (${id})`,
      details: [{ type: 'zitadel.v1.ErrorDetail', value: Buffer.from(detail).toString('base64') }],
    },
  };
}

class StubZitadel {
  url = '';
  requests: Recorded[] = [];
  private routes = new Map<string, Handler>();
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', this.url);
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = undefined;
      }
      const recorded: Recorded = {
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        text,
        json,
        form: new URLSearchParams(text),
      };
      this.requests.push(recorded);
      const handler = this.routes.get(`${recorded.method} ${recorded.path}`);
      void Promise.resolve(handler ? handler(recorded) : zitadelError(5, 'STUB-404', 'no such route')).then(
        (reply) => {
          if (reply === 'hang') return;
          res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
          res.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
        },
      );
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  reset(): void {
    this.requests = [];
    this.routes = new Map();
  }

  on(method: string, path: string, handler: Handler | Reply): void {
    this.routes.set(`${method} ${path}`, typeof handler === 'function' ? handler : () => handler);
  }

  /** Answers with each reply in turn, repeating the last. */
  sequence(method: string, path: string, ...replies: Reply[]): void {
    let index = 0;
    this.on(method, path, () => replies[Math.min(index++, replies.length - 1)]);
  }

  count(method: string, path: string): number {
    return this.requests.filter((r) => r.method === method && r.path === path).length;
  }

  last(method: string, path: string): Recorded {
    const found = this.requests.filter((r) => r.method === method && r.path === path).at(-1);
    if (!found) throw new Error(`no ${method} ${path} recorded`);
    return found;
  }
}

// ---- fixtures ------------------------------------------------------------------------------------

const stub = new StubZitadel();
type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let signingKey: SigningKey;
let publicJwk: JWK;
let otherKey: SigningKey;
let otherJwk: JWK;
let jwks: JWK[];

const PROJECT_ID = '200000000000000001';
const ORG_ID = '100000000000000001';
const CLIENT_ID = 'client-1@users';

function connection(overrides: Partial<ZitadelConnection> = {}): ZitadelConnection {
  return {
    url: stub.url,
    orgId: ORG_ID,
    projectId: PROJECT_ID,
    clientId: CLIENT_ID,
    redirectUri: 'http://app.test/auth/callback',
    postLogoutRedirectUri: 'http://app.test/',
    credentials: { pat: 'pat-123' },
    timeoutMs: 300,
    retries: 2,
    ...overrides,
  };
}

function client(
  overrides: Partial<ZitadelConnection> = {},
  logger = { warn: jest.fn<(msg: string) => void>() },
) {
  return new ZitadelClient(connection(overrides), logger);
}

function apiUser(id: string, state = 'USER_STATE_ACTIVE') {
  return {
    userId: id,
    details: { sequence: '3', resourceOwner: ORG_ID },
    state,
    username: 'ada',
    loginNames: ['ada'],
    preferredLoginName: 'ada',
    human: {
      profile: {
        givenName: 'Ada',
        familyName: 'Lovelace',
        displayName: 'Ada L.',
        preferredLanguage: 'en',
        avatarUrl: '',
      },
      email: { email: 'ada@example.com', isVerified: true },
    },
  };
}

/** A token as Zitadel would sign it; `claims` override the defaults (iss, aud, …). */
async function idToken(claims: JWTPayload, options: { key?: SigningKey; kid?: string; exp?: number } = {}) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    iss: stub.url,
    sub: '69629012906488334',
    aud: [CLIENT_ID, PROJECT_ID],
    iat: now,
    exp: options.exp ?? now + 300,
    nonce: 'nonce-1',
    azp: CLIENT_ID,
    email: 'ada@example.com',
    ...claims,
  })
    .setProtectedHeader({ alg: 'RS256', kid: options.kid ?? 'sig-1' })
    .sign(options.key ?? signingKey);
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

async function expectUnavailable(promise: Promise<unknown>): Promise<void> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(ApiError);
  expect((error as ApiError).code).toBe('upstream_unavailable');
  expect((error as ApiError).getStatus()).toBe(503);
  expect((error as ApiError).message).not.toContain(ZITADEL_TEXT);
}

beforeAll(async () => {
  await stub.start();
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'sig-1', alg: 'RS256', use: 'sig' };
  const other = await generateKeyPair('RS256', { extractable: true });
  otherKey = other.privateKey;
  otherJwk = { ...(await exportJWK(other.publicKey)), kid: 'sig-2', alg: 'RS256', use: 'sig' };
});

afterAll(async () => {
  await stub.stop();
});

beforeEach(() => {
  stub.reset();
  jwks = [publicJwk];
  stub.on('GET', '/.well-known/openid-configuration', () => ({
    body: {
      issuer: stub.url,
      authorization_endpoint: `${stub.url}/oauth/v2/authorize`,
      token_endpoint: `${stub.url}/oauth/v2/token`,
      jwks_uri: `${stub.url}/oauth/v2/keys`,
      end_session_endpoint: `${stub.url}/oidc/v1/end_session`,
    },
  }));
  stub.on('GET', '/oauth/v2/keys', () => ({ body: { keys: jwks } }));
});

// ---- service-account authentication ---------------------------------------------------------------

describe('service-account authentication', () => {
  it('sends the personal access token as a bearer token', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', { body: { user: apiUser('1') } });
    await client().getUser('1');
    expect(stub.last('POST', '/zitadel.user.v2.UserService/GetUserByID').headers.authorization).toBe(
      'Bearer pat-123',
    );
  });

  it('does not retry a 401 with a fixed PAT, and reports it as a ZitadelError', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', zitadelError(16, 'AUTH-7fs1e'));
    const error = await rejection(client().getUser('1'));
    expect(error).toBeInstanceOf(ZitadelError);
    expect((error as ZitadelError).kind).toBe('unauthenticated');
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(1);
  });

  describe('with a JWT-profile key file', () => {
    let dir: string;
    let keyFile: string;
    let publicKey: KeyObject;
    let issued = 0;

    beforeAll(async () => {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      publicKey = pair.publicKey;
      dir = await mkdtemp(join(tmpdir(), 'zitadel-key-'));
      keyFile = join(dir, 'key.json');
      const pem = pair.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
      await writeFile(
        keyFile,
        JSON.stringify({ type: 'serviceaccount', keyId: 'key-1', key: pem, userId: 'svc-9' }),
      );
    });

    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    beforeEach(() => {
      issued = 0;
      stub.on('POST', '/oauth/v2/token', async (request) => {
        // Slow enough that concurrent callers overlap with the exchange.
        await new Promise((resolve) => setTimeout(resolve, 30));
        const { payload, protectedHeader } = await jwtVerify(request.form.get('assertion')!, publicKey, {
          issuer: 'svc-9',
          subject: 'svc-9',
          audience: stub.url,
          algorithms: ['RS256'],
        });
        expect(protectedHeader.kid).toBe('key-1');
        expect(payload.exp! - payload.iat!).toBe(3600);
        expect(request.form.get('grant_type')).toBe('urn:ietf:params:oauth:grant-type:jwt-bearer');
        expect(request.form.get('scope')).toBe('openid urn:zitadel:iam:org:project:id:zitadel:aud');
        issued += 1;
        return { body: { access_token: `svc-token-${issued}`, token_type: 'Bearer', expires_in: 43199 } };
      });
    });

    it('exchanges the signed assertion once and reuses the token, also for concurrent callers', async () => {
      stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', { body: { user: apiUser('1') } });
      const zitadel = client({ credentials: { keyFile } });
      await Promise.all([zitadel.getUser('1'), zitadel.getUser('1'), zitadel.getUser('1')]);
      await zitadel.getUser('1');
      expect(stub.count('POST', '/oauth/v2/token')).toBe(1);
      expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(4);
      expect(stub.last('POST', '/zitadel.user.v2.UserService/GetUserByID').headers.authorization).toBe(
        'Bearer svc-token-1',
      );
    });

    it('drops the token and retries once after a 401', async () => {
      stub.sequence('POST', '/zitadel.user.v2.UserService/GetUserByID', zitadelError(16, 'AUTH-7fs1e'), {
        body: { user: apiUser('1') },
      });
      const zitadel = client({ credentials: { keyFile } });
      await expect(zitadel.getUser('1')).resolves.toMatchObject({ userId: '1' });
      expect(stub.count('POST', '/oauth/v2/token')).toBe(2);
      expect(stub.last('POST', '/zitadel.user.v2.UserService/GetUserByID').headers.authorization).toBe(
        'Bearer svc-token-2',
      );
    });

    it('gives up after the second 401', async () => {
      stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', zitadelError(16, 'AUTH-7fs1e'));
      const error = await rejection(client({ credentials: { keyFile } }).getUser('1'));
      expect((error as ZitadelError).kind).toBe('unauthenticated');
      expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(2);
    });

    it('turns a refused key into upstream_unavailable and logs why', async () => {
      stub.on('POST', '/oauth/v2/token', {
        status: 400,
        body: { error: 'invalid_grant', error_description: 'key expired' },
      });
      const logger = { warn: jest.fn<(msg: string) => void>() };
      await expectUnavailable(client({ credentials: { keyFile } }, logger).getUser('1'));
      expect(logger.warn.mock.calls.flat().join('\n')).toContain('key expired');
    });
  });
});

// ---- users -----------------------------------------------------------------------------------------

describe('users', () => {
  it('maps GetUserByID into a flat ZitadelUser', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', {
      body: { user: apiUser('69629012906488334') },
    });
    await expect(client().getUser('69629012906488334')).resolves.toEqual({
      userId: '69629012906488334',
      orgId: ORG_ID,
      state: 'USER_STATE_ACTIVE',
      username: 'ada',
      email: 'ada@example.com',
      emailVerified: true,
      givenName: 'Ada',
      familyName: 'Lovelace',
      displayName: 'Ada L.',
      preferredLanguage: 'en',
    });
  });

  it('reads an omitted isVerified as false', async () => {
    const user = apiUser('1');
    user.human.email = { email: 'ada@example.com' } as typeof user.human.email;
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', { body: { user } });
    await expect(client().getUser('1')).resolves.toMatchObject({ emailVerified: false });
  });

  it('returns null for an unknown or deleted user', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', (request) =>
      request.json.userId === '404'
        ? zitadelError(5, 'QUERY-Dfbg2')
        : { body: { user: apiUser('3', 'USER_STATE_DELETED') } },
    );
    await expect(client().getUser('404')).resolves.toBeNull();
    await expect(client().getUser('3')).resolves.toBeNull();
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(2);
  });

  it('lists a page of users with the total Zitadel sends as a string', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/ListUsers', {
      body: {
        details: { totalResult: '42', timestamp: '2024-01-01T00:00:00Z' },
        result: [apiUser('1'), apiUser('2')],
      },
    });
    const page = await client().listUsers({ offset: 20, limit: 2 });
    expect(page.total).toBe(42);
    expect(page.users.map((u) => u.userId)).toEqual(['1', '2']);
    expect(stub.last('POST', '/zitadel.user.v2.UserService/ListUsers').json).toEqual({
      // uint64 as a JSON string (protojson)
      query: { offset: '20', limit: 2, asc: true },
      queries: [{ organizationIdQuery: { organizationId: ORG_ID } }],
    });
  });

  it('lists the users of the organization it is asked for', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/ListUsers', { body: { details: { totalResult: '0' } } });
    await client().listUsers({ offset: 0, limit: 5, orgId: '555' });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/ListUsers').json).toMatchObject({
      queries: [{ organizationIdQuery: { organizationId: '555' } }],
    });
  });

  it('adds a human user in the organization it is asked for', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', { body: { userId: '9' } });
    await client().addHumanUser({
      orgId: '555',
      username: 'd',
      email: 'd@example.com',
      givenName: 'D',
      familyName: 'E',
      emailVerification: 'verified',
    });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/AddHumanUser').json).toMatchObject({
      organization: { orgId: '555' },
    });
  });

  it('lists the organizations the service account may read, and adds one', async () => {
    const ORGS = '/zitadel.org.v2.OrganizationService';
    stub.on('POST', `${ORGS}/ListOrganizations`, {
      body: {
        details: { totalResult: '3' },
        result: [{ id: '11', name: 'Acme', state: 'ORGANIZATION_STATE_ACTIVE' }, { name: 'no id' }],
      },
    });
    await expect(client().listOrganizations({ offset: 2, limit: 2 })).resolves.toEqual({
      total: 3,
      organizations: [{ id: '11', name: 'Acme' }],
    });
    expect(stub.last('POST', `${ORGS}/ListOrganizations`).json).toEqual({
      query: { offset: '2', limit: 2, asc: true },
    });
    stub.on('POST', `${ORGS}/AddOrganization`, { body: { organizationId: '12' } });
    await expect(client().addOrganization('Beta')).resolves.toEqual({ orgId: '12' });
    expect(stub.last('POST', `${ORGS}/AddOrganization`).json).toEqual({ name: 'Beta' });
  });

  it('adds a human user in the configured organization', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', {
      body: { userId: '7', details: {}, emailCode: 'XYZ123' },
    });
    const result = await client().addHumanUser({
      username: 'ada',
      email: 'ada@example.com',
      givenName: 'Ada',
      familyName: 'Lovelace',
      displayName: 'Ada L.',
      preferredLanguage: 'en',
      password: 'Secr3t!pass',
      emailVerification: 'return_code',
    });
    expect(result).toEqual({ userId: '7', emailCode: 'XYZ123' });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/AddHumanUser').json).toEqual({
      username: 'ada',
      organization: { orgId: ORG_ID },
      profile: { givenName: 'Ada', familyName: 'Lovelace', displayName: 'Ada L.', preferredLanguage: 'en' },
      email: { email: 'ada@example.com', returnCode: {} },
      // protojson leaves false out
      password: { password: 'Secr3t!pass' },
    });
  });

  it.each([
    ['send_code', { email: 'b@example.com', sendCode: {} }],
    ['verified', { email: 'b@example.com', isVerified: true }],
  ] as const)('asks Zitadel to %s the email', async (emailVerification, email) => {
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', { body: { userId: '8' } });
    await expect(
      client().addHumanUser({
        username: 'b',
        email: 'b@example.com',
        givenName: 'B',
        familyName: 'C',
        emailVerification,
      }),
    ).resolves.toEqual({ userId: '8' });
    const body = stub.last('POST', '/zitadel.user.v2.UserService/AddHumanUser').json;
    expect(body.email).toEqual(email);
    expect(body.password).toBeUndefined();
  });

  it('reports AlreadyExists as a conflict ApiError without Zitadel text', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', zitadelError(6, 'COMMAND-k2unb'));
    const error = await rejection(
      client().addHumanUser({
        username: 'ada',
        email: 'ada@example.com',
        givenName: 'Ada',
        familyName: 'Lovelace',
        emailVerification: 'verified',
      }),
    );
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe('conflict');
    expect((error as ApiError).getStatus()).toBe(409);
    expect((error as ApiError).message).not.toContain(ZITADEL_TEXT);
    expect(stub.count('POST', '/zitadel.user.v2.UserService/AddHumanUser')).toBe(1);
  });

  it('keeps other 4xx answers as ZitadelErrors with kind and error id', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/VerifyEmail', zitadelError(3, 'CODE-woT0xc'));
    const error = await rejection(client().verifyEmail('1', 'WRONG'));
    expect(error).toBeInstanceOf(ZitadelError);
    expect(error).toMatchObject({ kind: 'invalid_argument', errorId: 'CODE-woT0xc' });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/VerifyEmail').json).toEqual({
      userId: '1',
      verificationCode: 'WRONG',
    });
  });

  it('sends only the changed fields of a profile update', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/UpdateHumanUser', { body: { details: {} } });
    await client().updateHumanUser('1', { username: 'ada2', email: 'new@example.com' });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/UpdateHumanUser').json).toEqual({
      userId: '1',
      username: 'ada2',
      email: { email: 'new@example.com' },
    });
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(0);
  });

  it('completes the profile from Zitadel when only the display name changes', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', { body: { user: apiUser('1') } });
    stub.on('POST', '/zitadel.user.v2.UserService/UpdateHumanUser', { body: { details: {} } });
    await client().updateHumanUser('1', { displayName: 'Countess' });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/UpdateHumanUser').json).toEqual({
      userId: '1',
      profile: { givenName: 'Ada', familyName: 'Lovelace', displayName: 'Countess', preferredLanguage: 'en' },
    });
  });

  it('counts deactivating an already inactive user as success', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/DeactivateUser', zitadelError(9, 'COMMAND-5M0sf'));
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', {
      body: { user: apiUser('1', 'USER_STATE_INACTIVE') },
    });
    await expect(client().deactivateUser('1')).resolves.toBeUndefined();
    expect(stub.last('POST', '/zitadel.user.v2.UserService/DeactivateUser').json).toEqual({ userId: '1' });
  });

  it('still fails a refused deactivation when the user is not inactive', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/DeactivateUser', zitadelError(9, 'COMMAND-ke0fw'));
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', {
      body: { user: apiUser('1', 'USER_STATE_INITIAL') },
    });
    await expect(client().deactivateUser('1')).rejects.toMatchObject({ kind: 'failed_precondition' });
  });

  it('counts lock, unlock and reactivate in the target state as success', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/LockUser', zitadelError(9, 'COMMAND-3NN8v'));
    stub.on('POST', '/zitadel.user.v2.UserService/UnlockUser', zitadelError(9, 'COMMAND-4M0ds'));
    stub.on('POST', '/zitadel.user.v2.UserService/ReactivateUser', zitadelError(9, 'COMMAND-6M0sf'));
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', {
      body: { user: apiUser('1', 'USER_STATE_LOCKED') },
    });
    await expect(client().lockUser('1')).resolves.toBeUndefined();
    await expect(client().reactivateUser('1')).resolves.toBeUndefined();
    await expect(client().unlockUser('1')).rejects.toBeInstanceOf(ZitadelError);
  });

  it('counts deleting an unknown user as success', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/DeleteUser', zitadelError(5, 'COMMAND-5M0od'));
    await expect(client().deleteUser('1')).resolves.toBeUndefined();
  });
});

describe('account self-service', () => {
  const SET_PASSWORD = '/zitadel.user.v2.UserService/SetPassword';

  it('changes a password proven by the current one, or by a reset code', async () => {
    stub.on('POST', SET_PASSWORD, { body: { details: {} } });
    await client().changePassword('1', 'N3w!password', { currentPassword: 'Old!passw0rd' });
    expect(stub.last('POST', SET_PASSWORD).json).toEqual({
      userId: '1',
      newPassword: { password: 'N3w!password' },
      currentPassword: 'Old!passw0rd',
    });
    await client().changePassword('1', 'N3w!password', { verificationCode: 'ABC123' });
    expect(stub.last('POST', SET_PASSWORD).json).toEqual({
      userId: '1',
      newPassword: { password: 'N3w!password' },
      verificationCode: 'ABC123',
    });
  });

  it('reports a wrong current password as invalid credentials, a wrong code or a refused password as ZitadelErrors', async () => {
    stub.on('POST', SET_PASSWORD, zitadelError(3, 'COMMAND-3M0fs'));
    await expect(
      client().changePassword('1', 'N3w!password', { currentPassword: 'wrong' }),
    ).rejects.toBeInstanceOf(InvalidCredentialsError);
    stub.on('POST', SET_PASSWORD, zitadelError(3, 'COMMA-HuJf6'));
    await expect(
      client().changePassword('1', 'short', { currentPassword: 'Old!passw0rd' }),
    ).rejects.toMatchObject({ kind: 'invalid_argument', errorId: 'COMMA-HuJf6' });
    stub.on('POST', SET_PASSWORD, zitadelError(3, 'CODE-woT0xc'));
    await expect(
      client().changePassword('1', 'N3w!password', { verificationCode: 'WRONG1' }),
    ).rejects.toMatchObject({ kind: 'invalid_argument', errorId: 'CODE-woT0xc' });
    // Not retried: a code works once.
    expect(stub.count('POST', SET_PASSWORD)).toBe(3);
  });

  it('asks Zitadel to mail a password reset code', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/PasswordReset', { body: { details: {} } });
    await client().requestPasswordReset('1');
    expect(stub.last('POST', '/zitadel.user.v2.UserService/PasswordReset').json).toEqual({
      userId: '1',
      sendLink: { notificationType: 'NOTIFICATION_TYPE_Email' },
    });
  });

  it('sets an email with a mailed code, and resends the code', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/SetEmail', { body: { details: {} } });
    stub.on('POST', '/zitadel.user.v2.UserService/ResendEmailCode', { body: { details: {} } });
    await client().setEmail('1', 'new@example.test');
    expect(stub.last('POST', '/zitadel.user.v2.UserService/SetEmail').json).toEqual({
      userId: '1',
      email: 'new@example.test',
      sendCode: {},
    });
    await client().resendEmailCode('1');
    expect(stub.last('POST', '/zitadel.user.v2.UserService/ResendEmailCode').json).toEqual({
      userId: '1',
      sendCode: {},
    });
  });

  it('reads the password complexity policy of the organization', async () => {
    const path = '/zitadel.settings.v2.SettingsService/GetPasswordComplexitySettings';
    stub.on('POST', path, {
      body: { details: {}, settings: { minLength: '12', requiresUppercase: true, requiresNumber: true } },
    });
    await expect(client().getPasswordComplexitySettings()).resolves.toEqual({
      minLength: 12,
      requiresUppercase: true,
      requiresLowercase: false,
      requiresNumber: true,
      requiresSymbol: false,
    });
    expect(stub.last('POST', path).json).toEqual({ ctx: { orgId: connection().orgId } });
    stub.on('POST', path, { body: { details: {} } });
    await expect(client().getPasswordComplexitySettings()).rejects.toBeInstanceOf(ZitadelError);
  });

  it('checks a password of a user named by id', async () => {
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', {
      body: { sessionId: 's-2', sessionToken: 'tok-2' },
    });
    stub.on('POST', '/zitadel.session.v2.SessionService/GetSession', {
      body: { session: { factors: { user: { id: '42' } } } },
    });
    await client().checkPassword({ userId: '42' }, 'Secr3t!pass');
    expect(stub.last('POST', '/zitadel.session.v2.SessionService/CreateSession').json).toMatchObject({
      checks: { user: { userId: '42' }, password: { password: 'Secr3t!pass' } },
    });
  });
});

describe('what a login needs besides the password', () => {
  it('lists the authentication methods a user has enrolled', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/ListAuthenticationMethodTypes', {
      body: {
        details: { totalResult: '2' },
        authMethodTypes: ['AUTHENTICATION_METHOD_TYPE_PASSWORD', 'AUTHENTICATION_METHOD_TYPE_TOTP'],
      },
    });
    await expect(client().listAuthenticationMethodTypes('7')).resolves.toEqual([
      'AUTHENTICATION_METHOD_TYPE_PASSWORD',
      'AUTHENTICATION_METHOD_TYPE_TOTP',
    ]);
    // protojson leaves an empty list out.
    stub.on('POST', '/zitadel.user.v2.UserService/ListAuthenticationMethodTypes', { body: { details: {} } });
    expect(stub.last('POST', '/zitadel.user.v2.UserService/ListAuthenticationMethodTypes').json).toEqual({
      userId: '7',
    });
    await expect(client().listAuthenticationMethodTypes('8')).resolves.toEqual([]);
  });

  it("reads the organization's login policy, an omitted boolean as false", async () => {
    stub.on('POST', '/zitadel.settings.v2.SettingsService/GetLoginSettings', {
      body: { details: {}, settings: { allowUsernamePassword: true, passwordCheckLifetime: '864000s' } },
    });
    await expect(client().getLoginSettings()).resolves.toEqual({
      allowUsernamePassword: true,
      allowExternalIdp: false,
      forceMfa: false,
      forceMfaLocalOnly: false,
    });
    expect(stub.last('POST', '/zitadel.settings.v2.SettingsService/GetLoginSettings').json).toEqual({
      ctx: { orgId: connection().orgId },
    });
  });

  it('refuses a login settings answer without settings rather than guessing', async () => {
    stub.on('POST', '/zitadel.settings.v2.SettingsService/GetLoginSettings', { body: { details: {} } });
    await expect(client().getLoginSettings()).rejects.toBeInstanceOf(ZitadelError);
  });
});

// ---- transient failures ----------------------------------------------------------------------------

describe('transient failures', () => {
  const newUser = {
    username: 'ada',
    email: 'ada@example.com',
    givenName: 'Ada',
    familyName: 'Lovelace',
    emailVerification: 'verified',
  } as const;

  it('retries an idempotent call on 5xx, then reports upstream_unavailable', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', zitadelError(13, 'INTERNAL-1'));
    const logger = { warn: jest.fn<(msg: string) => void>() };
    await expectUnavailable(client({}, logger).getUser('1'));
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(3);
    expect(logger.warn).toHaveBeenCalledTimes(1);
  });

  it('recovers when a retry succeeds', async () => {
    stub.sequence('POST', '/zitadel.user.v2.UserService/ListUsers', zitadelError(14, 'UNAVAILABLE'), {
      body: { details: { totalResult: '0' } },
    });
    await expect(client().listUsers({ offset: 0, limit: 10 })).resolves.toEqual({ total: 0, users: [] });
    expect(stub.count('POST', '/zitadel.user.v2.UserService/ListUsers')).toBe(2);
  });

  it('opens the circuit after consecutive failures: later calls fail without a request, then a trial closes it', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', zitadelError(13, 'INTERNAL-1'));
    const zitadel = client({ retries: 0, circuit: { failureThreshold: 2, resetMs: 200 } });
    await expectUnavailable(zitadel.getUser('1'));
    await expectUnavailable(zitadel.getUser('1'));
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(2);
    await expectUnavailable(zitadel.getUser('1'));
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(2);
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', { body: { user: apiUser('1') } });
    await new Promise((resolve) => setTimeout(resolve, 250));
    await expect(zitadel.getUser('1')).resolves.toMatchObject({ userId: '1' });
    await expect(zitadel.getUser('1')).resolves.toMatchObject({ userId: '1' });
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(4);
  });

  it('never retries adding a user or checking a password', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', zitadelError(13, 'INTERNAL-1'));
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', zitadelError(13, 'INTERNAL-1'));
    await expectUnavailable(client().addHumanUser(newUser));
    await expectUnavailable(client().checkPassword('ada', 'pw'));
    expect(stub.count('POST', '/zitadel.user.v2.UserService/AddHumanUser')).toBe(1);
    expect(stub.count('POST', '/zitadel.session.v2.SessionService/CreateSession')).toBe(1);
  });

  it('times out every attempt of a hanging call', async () => {
    stub.on('POST', '/zitadel.user.v2.UserService/GetUserByID', 'hang');
    stub.on('POST', '/zitadel.user.v2.UserService/AddHumanUser', 'hang');
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', 'hang');
    await expectUnavailable(client().getUser('1'));
    await expectUnavailable(client().addHumanUser(newUser));
    await expectUnavailable(client().checkPassword('ada', 'pw'));
    expect(stub.count('POST', '/zitadel.user.v2.UserService/GetUserByID')).toBe(3);
    expect(stub.count('POST', '/zitadel.user.v2.UserService/AddHumanUser')).toBe(1);
    expect(stub.count('POST', '/zitadel.session.v2.SessionService/CreateSession')).toBe(1);
  });

  it('treats a refused connection like an outage', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const logger = { warn: jest.fn<(msg: string) => void>() };
    await expectUnavailable(client({ url: `http://127.0.0.1:${port}` }, logger).getUser('1'));
    expect(logger.warn.mock.calls.flat().join('\n')).toContain('after 3 attempt(s)');
  });

  it('treats a dropped connection like an outage, retried only when idempotent', async () => {
    let connections = 0;
    const dropping = createNetServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
    const { port } = dropping.address() as AddressInfo;
    try {
      const zitadel = client({
        url: `http://127.0.0.1:${port}`,
        circuit: { failureThreshold: 10, resetMs: 200 },
      });
      await expectUnavailable(zitadel.getUser('1'));
      expect(connections).toBe(3);
      await expectUnavailable(zitadel.addHumanUser(newUser));
      expect(connections).toBe(4);
    } finally {
      await new Promise((resolve) => dropping.close(resolve));
    }
  });
});

// ---- password checks and sessions ------------------------------------------------------------------

describe('checkPassword', () => {
  it('creates a short session and reads the user id from it', async () => {
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', {
      body: { sessionId: 's-1', sessionToken: 'tok-1', details: {} },
    });
    stub.on('POST', '/zitadel.session.v2.SessionService/GetSession', {
      body: { session: { id: 's-1', factors: { user: { id: '69629012906488334', loginName: 'ada' } } } },
    });
    await expect(
      client().checkPassword('ada', 'Secr3t!pass', { ip: '203.0.113.9', description: 'Firefox' }),
    ).resolves.toEqual({ sessionId: 's-1', sessionToken: 'tok-1', userId: '69629012906488334' });
    expect(stub.last('POST', '/zitadel.session.v2.SessionService/GetSession').json).toEqual({
      sessionId: 's-1',
      sessionToken: 'tok-1',
    });
    expect(stub.last('POST', '/zitadel.session.v2.SessionService/CreateSession').json).toEqual({
      checks: { user: { loginName: 'ada' }, password: { password: 'Secr3t!pass' } },
      userAgent: { ip: '203.0.113.9', description: 'Firefox' },
      lifetime: '300s',
    });
  });

  it.each([
    ['a wrong password', zitadelError(3, 'COMMAND-3M0fs')],
    ['an unknown login name', zitadelError(5, 'QUERY-Dfbg2')],
  ])('reports %s as invalid credentials', async (_case, reply) => {
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', reply);
    const error = await rejection(client().checkPassword('ada', 'wrong'));
    expect(error).toBeInstanceOf(InvalidCredentialsError);
    expect((error as Error).message).not.toContain(ZITADEL_TEXT);
  });

  it.each([
    ['COMMAND-JLK35', 'locked'],
    ['COMMAND-SFA3t', 'locked'],
    ['COMMAND-vgDIu', 'inactive'],
    ['COMMAND-3nJ4t', 'initial'],
  ])('reports FailedPrecondition %s as a user blocked (%s)', async (id, reason) => {
    stub.on('POST', '/zitadel.session.v2.SessionService/CreateSession', zitadelError(9, id));
    const error = await rejection(client().checkPassword('ada', 'pw'));
    expect(error).toBeInstanceOf(UserBlockedError);
    expect((error as UserBlockedError).reason).toBe(reason);
  });

  it('deletes a session best effort', async () => {
    stub.on('POST', '/zitadel.session.v2.SessionService/DeleteSession', (request) =>
      request.json.sessionId === 's-1'
        ? { body: { details: {} } }
        : request.json.sessionId === 's-2'
          ? zitadelError(5, 'COMMAND-8Kp3d')
          : zitadelError(14, 'UNAVAILABLE'),
    );
    await client().deleteSession('s-1', 'tok-1');
    expect(stub.last('POST', '/zitadel.session.v2.SessionService/DeleteSession').json).toEqual({
      sessionId: 's-1',
      sessionToken: 'tok-1',
    });
    await expect(client().deleteSession('s-2')).resolves.toBeUndefined();
    await expectUnavailable(client().deleteSession('s-3'));
  });
});

// ---- roles (AuthorizationService v2beta) ------------------------------------------------------------

describe('roles', () => {
  const AUTHZ = '/zitadel.authorization.v2beta.AuthorizationService';
  const list = `${AUTHZ}/ListAuthorizations`;
  /** zitadel.authorization.v2beta.Authorization in protojson (proto/zitadel/authorization/v2beta/authorization.proto). */
  const authorization = (
    id: string,
    userId: string,
    roles: string[],
    state = 'STATE_ACTIVE',
    projectId = PROJECT_ID,
  ) => ({
    id,
    projectId,
    organizationId: ORG_ID,
    state,
    user: { id: userId, preferredLoginName: 'ada', organizationId: ORG_ID },
    roles,
  });
  const projectFilters = [{ projectId: { id: PROJECT_ID } }, { organizationId: { id: ORG_ID } }];

  it('lists the authorizations of the user in the project and organization; inactive ones grant nothing', async () => {
    stub.on('POST', list, {
      body: {
        pagination: { totalResult: '3', appliedLimit: '100' },
        authorizations: [
          authorization('a1', '1', ['admin', 'viewer']),
          authorization('a2', '1', ['owner'], 'STATE_INACTIVE'),
          authorization('a3', '1', ['other'], 'STATE_ACTIVE', 'another'),
        ],
      },
    });
    await expect(client().getUserRoles('1')).resolves.toEqual(['admin', 'viewer']);
    expect(stub.last('POST', list).json).toEqual({
      pagination: { limit: 100, asc: true },
      filters: [{ userId: { id: '1' } }, ...projectFilters],
    });
    // A user of another organization: its authorizations are that organization's.
    await client().getUserRoles('1', '555');
    expect(stub.last('POST', list).json).toMatchObject({
      filters: [
        { userId: { id: '1' } },
        { projectId: { id: PROJECT_ID } },
        { organizationId: { id: '555' } },
      ],
    });
  });

  it("lists a page of the project's authorizations with each user's active roles", async () => {
    stub.on('POST', list, {
      body: {
        pagination: { totalResult: '7', appliedLimit: '3' },
        authorizations: [
          authorization('a1', '1', ['admin']),
          authorization('a2', '2', ['owner'], 'STATE_INACTIVE'),
          authorization('a3', '3', ['other'], 'STATE_ACTIVE', 'another'),
        ],
      },
    });
    await expect(client().listProjectGrants({ offset: 4, limit: 3 })).resolves.toEqual({
      total: 7,
      grants: [
        { userId: '1', roles: ['admin'] },
        { userId: '2', roles: [] },
      ],
    });
    expect(stub.last('POST', list).json).toEqual({
      pagination: { offset: '4', limit: 3, asc: true },
      filters: projectFilters,
    });
  });

  it('creates the authorization when the user has none', async () => {
    stub.on('POST', list, { body: {} });
    stub.on('POST', `${AUTHZ}/CreateAuthorization`, {
      body: { id: 'a1', creationDate: '2025-07-01T00:00:00Z' },
    });
    await client().setUserRoles('1', ['admin', 'admin']);
    expect(stub.last('POST', `${AUTHZ}/CreateAuthorization`).json).toEqual({
      userId: '1',
      projectId: PROJECT_ID,
      organizationId: ORG_ID,
      roleKeys: ['admin'],
    });
    // In the user's organization when it is another one: both the lookup and the write.
    await client().setUserRoles('1', ['admin'], '555');
    expect(stub.last('POST', list).json).toMatchObject({
      filters: [
        { userId: { id: '1' } },
        { projectId: { id: PROJECT_ID } },
        { organizationId: { id: '555' } },
      ],
    });
    expect(stub.last('POST', `${AUTHZ}/CreateAuthorization`).json).toMatchObject({ organizationId: '555' });
  });

  it('updates an existing authorization, and leaves an unchanged one alone', async () => {
    stub.on('POST', list, { body: { authorizations: [authorization('a1', '1', ['viewer'])] } });
    stub.on('POST', `${AUTHZ}/UpdateAuthorization`, { body: { changeDate: '2025-07-01T00:00:00Z' } });
    await client().setUserRoles('1', ['admin', 'viewer']);
    expect(stub.last('POST', `${AUTHZ}/UpdateAuthorization`).json).toEqual({
      id: 'a1',
      roleKeys: ['admin', 'viewer'],
    });
    await client().setUserRoles('1', ['viewer']);
    expect(stub.count('POST', `${AUTHZ}/UpdateAuthorization`)).toBe(1);
  });

  it('deletes the authorization for an empty role list', async () => {
    stub.on('POST', list, { body: { authorizations: [authorization('a1', '1', ['viewer'])] } });
    stub.on('POST', `${AUTHZ}/DeleteAuthorization`, { body: { deletionDate: '2025-07-01T00:00:00Z' } });
    await client().setUserRoles('1', []);
    expect(stub.last('POST', `${AUTHZ}/DeleteAuthorization`).json).toEqual({ id: 'a1' });
  });

  it('updates the authorization someone else created meanwhile', async () => {
    stub.sequence('POST', list, { body: {} }, { body: { authorizations: [authorization('a9', '1', [])] } });
    stub.on('POST', `${AUTHZ}/CreateAuthorization`, zitadelError(6, 'COMMAND-2b8fs'));
    stub.on('POST', `${AUTHZ}/UpdateAuthorization`, { body: {} });
    await client().setUserRoles('1', ['admin']);
    expect(stub.last('POST', `${AUTHZ}/UpdateAuthorization`).json).toEqual({ id: 'a9', roleKeys: ['admin'] });
  });
});

// ---- OIDC --------------------------------------------------------------------------------------------

describe('OIDC', () => {
  it('builds the authorization URL from discovery, fetched once', async () => {
    const zitadel = client();
    const url = new URL(
      await zitadel.authorizationUrl({ state: 'st', nonce: 'no', codeChallenge: 'ch', loginHint: 'ada' }),
    );
    await zitadel.authorizationUrl({ state: 'st', nonce: 'no', codeChallenge: 'ch' });
    expect(`${url.origin}${url.pathname}`).toBe(`${stub.url}/oauth/v2/authorize`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      client_id: CLIENT_ID,
      redirect_uri: 'http://app.test/auth/callback',
      response_type: 'code',
      scope: `openid profile email urn:zitadel:iam:org:project:id:${PROJECT_ID}:aud urn:zitadel:iam:org:projects:roles`,
      state: 'st',
      nonce: 'no',
      code_challenge: 'ch',
      code_challenge_method: 'S256',
      login_hint: 'ada',
    });
    expect(stub.count('GET', '/.well-known/openid-configuration')).toBe(1);
  });

  it('tries discovery again after a failure', async () => {
    stub.sequence('GET', '/.well-known/openid-configuration', zitadelError(13, 'X'), {
      body: {
        issuer: stub.url,
        authorization_endpoint: `${stub.url}/oauth/v2/authorize`,
        token_endpoint: `${stub.url}/oauth/v2/token`,
        jwks_uri: `${stub.url}/oauth/v2/keys`,
      },
    });
    const zitadel = client({ retries: 0 });
    await expectUnavailable(zitadel.authorizationUrl({ state: 's', nonce: 'n', codeChallenge: 'c' }));
    await expect(zitadel.authorizationUrl({ state: 's', nonce: 'n', codeChallenge: 'c' })).resolves.toContain(
      '/oauth/v2/authorize?',
    );
  });

  it('exchanges a code with PKCE and the client secret, and checks the ID token it gets', async () => {
    const id = await idToken({});
    stub.on('POST', '/oauth/v2/token', {
      body: { id_token: id, access_token: 'access.jwt', expires_in: 43199, token_type: 'Bearer' },
    });
    const tokens = await client({ clientSecret: 's3cret:+' }).exchangeCode({
      code: 'c0de',
      codeVerifier: 'v',
      nonce: 'nonce-1',
    });
    expect(tokens).toEqual({ idToken: id, accessToken: 'access.jwt', expiresIn: 43199 });
    const request = stub.last('POST', '/oauth/v2/token');
    expect(Object.fromEntries(request.form)).toEqual({
      grant_type: 'authorization_code',
      code: 'c0de',
      redirect_uri: 'http://app.test/auth/callback',
      code_verifier: 'v',
    });
    expect(request.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    const basic = Buffer.from(request.headers.authorization!.replace(/^Basic /, ''), 'base64').toString();
    // RFC 6749 §2.3.1: both parts form-encoded before the Basic encoding (so the colon in the secret survives).
    expect(basic).toContain('s3cret%3A%2B');
    expect(basic.split(':').map(decodeURIComponent)).toEqual([CLIENT_ID, 's3cret:+']);
  });

  it.each([
    ['another nonce', () => idToken({ nonce: 'nonce-2' })],
    ['another issuer', () => idToken({ iss: 'https://evil.test' })],
    ['another audience', () => idToken({ aud: 'someone-else', azp: 'someone-else' })],
    ['an expired token', () => idToken({}, { exp: Math.floor(Date.now() / 1000) - 600 })],
  ])('refuses a code exchange whose ID token has %s', async (_case, make) => {
    stub.on('POST', '/oauth/v2/token', {
      body: { id_token: await make(), access_token: 'a', expires_in: 60, token_type: 'Bearer' },
    });
    const error = await rejection(client().exchangeCode({ code: 'c', codeVerifier: 'v', nonce: 'nonce-1' }));
    expect(error).toMatchObject({ kind: 'unauthenticated' });
  });

  it('reports a used code as invalid_grant, without retrying', async () => {
    stub.on('POST', '/oauth/v2/token', {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'used' },
    });
    const error = await rejection(client().exchangeCode({ code: 'c', codeVerifier: 'v', nonce: 'n' }));
    expect(error).toMatchObject({ kind: 'invalid_argument', errorId: 'invalid_grant' });
    stub.on('POST', '/oauth/v2/token', { status: 502 });
    await expectUnavailable(client().exchangeCode({ code: 'c', codeVerifier: 'v', nonce: 'n' }));
    expect(stub.count('POST', '/oauth/v2/token')).toBe(2);
  });

  it('verifies an ID token and merges the role claims', async () => {
    const token = await idToken({
      'urn:zitadel:iam:org:project:roles': { admin: { [ORG_ID]: 'acme.test' } },
      [`urn:zitadel:iam:org:project:${PROJECT_ID}:roles`]: { viewer: { [ORG_ID]: 'acme.test' } },
    });
    const claims = await client().verifyIdToken(token, 'nonce-1');
    expect(claims).toMatchObject({
      sub: '69629012906488334',
      iss: stub.url,
      aud: [CLIENT_ID, PROJECT_ID],
      email: 'ada@example.com',
      nonce: 'nonce-1',
    });
    expect(claims.roles.sort()).toEqual(['admin', 'viewer']);
  });

  it.each([
    ['a wrong nonce', () => idToken({}), 'other-nonce', 'nonce_mismatch'],
    ['a wrong issuer', () => idToken({ iss: 'https://evil.test' }), 'nonce-1', 'JWTClaimValidationFailed'],
    ['a wrong audience', () => idToken({ aud: 'someone-else' }), 'nonce-1', 'JWTClaimValidationFailed'],
    [
      'an expired token',
      () => idToken({}, { exp: Math.floor(Date.now() / 1000) - 120 }),
      'nonce-1',
      'JWTExpired',
    ],
    ['a forged signature', () => idToken({}, { key: otherKey }), 'nonce-1', 'JWSSignatureVerificationFailed'],
    ['an unknown kid', () => idToken({}, { kid: 'sig-404' }), 'nonce-1', 'JWKSNoMatchingKey'],
  ])('rejects %s', async (_case, make, nonce, errorId) => {
    const error = await rejection(client().verifyIdToken(await make(), nonce));
    expect(error).toBeInstanceOf(ZitadelError);
    expect(error).toMatchObject({ kind: 'unauthenticated', errorId });
  });

  it('refetches the JWKS for an unknown kid (rotation), at most once per cooldown', async () => {
    const zitadel = client();
    await zitadel.verifyIdToken(await idToken({}), 'nonce-1');
    await zitadel.verifyIdToken(await idToken({}), 'nonce-1');
    expect(stub.count('GET', '/oauth/v2/keys')).toBe(1);

    // Forged kids cannot hammer the endpoint: within jose's cooldown an unknown kid is refused unfetched.
    const unknown = await idToken({}, { key: otherKey, kid: 'sig-404' });
    const forged = async () => {
      for (let i = 0; i < 20; i++) {
        await expect(zitadel.verifyIdToken(unknown, 'nonce-1')).rejects.toMatchObject({
          kind: 'unauthenticated',
        });
      }
    };
    await forged();
    expect(stub.count('GET', '/oauth/v2/keys')).toBe(1);

    // After the cooldown, a key Zitadel rotated in is fetched and accepted.
    jwks = [publicJwk, otherJwk];
    const later = Date.now() + JWKS_COOLDOWN_MS + 1;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      const rotated = await idToken({}, { key: otherKey, kid: 'sig-2' });
      await expect(zitadel.verifyIdToken(rotated, 'nonce-1')).resolves.toMatchObject({
        sub: '69629012906488334',
      });
      expect(stub.count('GET', '/oauth/v2/keys')).toBe(2);
      await forged();
      expect(stub.count('GET', '/oauth/v2/keys')).toBe(2);
    } finally {
      clock.mockRestore();
    }
  });

  it('reports an unreachable JWKS as upstream_unavailable, not as a bad token', async () => {
    stub.on('GET', '/oauth/v2/keys', zitadelError(14, 'UNAVAILABLE'));
    await expectUnavailable(client().verifyIdToken(await idToken({}), 'nonce-1'));
    expect(stub.count('GET', '/oauth/v2/keys')).toBe(3);
  });

  it('hands out each signing key as one KeyObject, made once', async () => {
    const zitadel = client();
    const key = await zitadel.verificationKey('sig-1');
    expect(key).toBeInstanceOf(KeyObject);
    expect(key.asymmetricKeyType).toBe('rsa');
    expect(await zitadel.verificationKey('sig-1')).toBe(key);
    expect(stub.count('GET', '/oauth/v2/keys')).toBe(1);
    await expect(zitadel.verificationKey('sig-404')).rejects.toMatchObject({ kind: 'unauthenticated' });
  });

  it('builds the end-session URL', async () => {
    const url = new URL(await client().endSessionUrl({ idTokenHint: 'id.jwt' }));
    expect(`${url.origin}${url.pathname}`).toBe(`${stub.url}/oidc/v1/end_session`);
    expect(Object.fromEntries(url.searchParams)).toEqual({
      id_token_hint: 'id.jwt',
      client_id: CLIENT_ID,
      post_logout_redirect_uri: 'http://app.test/',
    });
    const bare = new URL(
      await client({ postLogoutRedirectUri: undefined }).endSessionUrl({ idTokenHint: 'x' }),
    );
    expect(bare.searchParams.has('post_logout_redirect_uri')).toBe(false);
  });

  it('exposes the issuer', () => {
    expect(client({ url: `${stub.url}/` }).issuer).toBe(stub.url);
  });
});
