import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { create, toBinary } from '@bufbuild/protobuf';
import { ErrorDetailSchema } from '@zitadel/proto/zitadel/message_pb.js';
import { ApiError } from '../common/errors/api-error.js';
import type { ZitadelConnection } from './zitadel-connection.js';
import { InvalidCredentialsError, UserBlockedError, ZitadelClient } from './zitadel.client.js';

/**
 * Replays of Zitadel's wire format, written from Zitadel's own documentation and protos rather than from
 * dev-idp, so that a mistake the client and dev-idp share still fails here. Each exchange names where its
 * shape comes from. The replay server answers only the exact request it expects: the path
 * (`POST /<package>.<Service>/<Method>`, Connect protocol, connectrpc.com/docs/protocol "Unary-Request"),
 * the Connect headers, and the JSON body (protojson: lowerCamelCase names, 64-bit integers as strings,
 * enums by name, Durations as "300s"); anything else is answered 400 and fails the test.
 *
 * Sources (Zitadel v4, protos as published in @zitadel/proto 1.3.1):
 * - [user-v2] proto/zitadel/user/v2/user_service.proto, user.proto, email.proto; docs
 *   https://zitadel.com/docs/reference/api/user/zitadel.user.v2.UserService.GetUserByID (response example)
 * - [session-v2] proto/zitadel/session/v2/session_service.proto, session.proto; the session example in
 *   https://zitadel.com/docs/guides/integrate/login-ui/session-validation
 * - [settings-v2] proto/zitadel/settings/v2/settings_service.proto, login_settings.proto
 * - [authz-v2beta] proto/zitadel/authorization/v2beta/authorization_service.proto, authorization.proto,
 *   proto/zitadel/filter/v2beta/filter.proto
 * - [errors] Connect error JSON (connectrpc.com/docs/protocol "Error end-stream"): `{code, message,
 *   details: [{type, value}]}` with Zitadel's `zitadel.v1.ErrorDetail` (proto/zitadel/message.proto);
 *   error ids from Zitadel's command package (COMMAND-3M0fs wrong password, COMMAND-JLK35 locked user)
 * - [oidc] https://zitadel.com/docs/apis/openidoauth/endpoints (discovery, token, introspection);
 *   RFC 7662 §2.2 introspection response; Zitadel's role claim `urn:zitadel:iam:org:project:roles`
 */

interface Exchange {
  source: string;
  method: 'GET' | 'POST';
  path: string;
  /** The body the client must send: protojson for Connect, form fields for OAuth. */
  request?: unknown;
  status?: number;
  response: unknown;
}

const ORG_ID = '69629026806489455';
const PROJECT_ID = '69629023906488334';
const USER_ID = '69629012906488334';

let server: Server;
let baseUrl = '';
let script: Exchange[] = [];
let mismatches: string[] = [];

function connectError(code: string, status: number, id: string, message: string) {
  const detail = toBinary(ErrorDetailSchema, create(ErrorDetailSchema, { id, message }));
  return {
    status,
    response: {
      code,
      message: `${message} (${id})`,
      details: [{ type: 'zitadel.v1.ErrorDetail', value: Buffer.from(detail).toString('base64') }],
    },
  };
}

function client(overrides: Partial<ZitadelConnection> = {}) {
  return new ZitadelClient({
    url: baseUrl,
    orgId: ORG_ID,
    projectId: PROJECT_ID,
    clientId: '69629030806489455@users-api',
    redirectUri: 'https://users.example.com/api/users/login/callback',
    credentials: { pat: 'pat-replay' },
    timeoutMs: 2_000,
    retries: 0,
    ...overrides,
  });
}

/** Plays the exchanges in order; each must be consumed exactly. */
async function replay<T>(exchanges: Exchange[], call: () => Promise<T>): Promise<T> {
  script = [...exchanges];
  mismatches = [];
  try {
    return await call();
  } finally {
    expect(mismatches).toEqual([]);
    expect(script.map((e) => `${e.method} ${e.path}`)).toEqual([]);
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const url = new URL(req.url ?? '/', baseUrl);
      const next = script.shift();
      const fail = (why: string) => {
        mismatches.push(why);
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'invalid_argument', message: why }));
      };
      if (!next) return fail(`unexpected ${req.method} ${url.pathname}`);
      if (req.method !== next.method || url.pathname !== next.path)
        return fail(`expected ${next.method} ${next.path}, got ${req.method} ${url.pathname}`);
      const connect = next.path.startsWith('/zitadel.');
      if (connect) {
        if (req.headers['content-type'] !== 'application/json')
          return fail(`content-type ${req.headers['content-type']}`);
        if (req.headers['connect-protocol-version'] !== '1') return fail('no Connect-Protocol-Version: 1');
        if (req.headers.authorization !== 'Bearer pat-replay') return fail('no service-account bearer token');
        const body: unknown = text ? JSON.parse(text) : {};
        if (!isDeepStrictEqual(body, next.request))
          return fail(`${next.path} body ${JSON.stringify(body)} != ${JSON.stringify(next.request)}`);
      } else if (next.request !== undefined) {
        const form = Object.fromEntries(new URLSearchParams(text));
        for (const [name, value] of Object.entries(next.request as Record<string, string>)) {
          if (form[name] !== value) return fail(`${next.path} form ${name}=${form[name]} != ${value}`);
        }
      }
      res.writeHead(next.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(next.response));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('user service v2 [user-v2]', () => {
  it('GetUserByID: the documented response, human user, read into the service’s flat user', async () => {
    const user = await replay(
      [
        {
          source: 'docs GetUserByID response example',
          method: 'POST',
          path: '/zitadel.user.v2.UserService/GetUserByID',
          request: { userId: USER_ID },
          response: {
            details: { sequence: '5', changeDate: '2025-01-15T01:30:15.010Z', resourceOwner: ORG_ID },
            user: {
              userId: USER_ID,
              details: { sequence: '5', changeDate: '2025-01-15T01:30:15.010Z', resourceOwner: ORG_ID },
              state: 'USER_STATE_ACTIVE',
              username: 'minnie-mouse',
              loginNames: ['minnie-mouse@fabi.zitadel.app'],
              preferredLoginName: 'minnie-mouse@fabi.zitadel.app',
              human: {
                profile: {
                  givenName: 'Minnie',
                  familyName: 'Mouse',
                  nickName: '',
                  displayName: 'Minnie Mouse',
                  preferredLanguage: 'en',
                  gender: 'GENDER_FEMALE',
                  avatarUrl: '',
                },
                email: { email: 'minnie@mouse.com', isVerified: true },
                phone: { phone: '', isVerified: false },
                passwordChangeRequired: false,
                passwordChanged: '2025-01-15T01:30:15.010Z',
              },
            },
          },
        },
      ],
      () => client().getUser(USER_ID),
    );
    expect(user).toEqual({
      userId: USER_ID,
      // The user's organization: `details.resourceOwner` in Zitadel's answer.
      orgId: ORG_ID,
      state: 'USER_STATE_ACTIVE',
      username: 'minnie-mouse',
      email: 'minnie@mouse.com',
      emailVerified: true,
      givenName: 'Minnie',
      familyName: 'Mouse',
      displayName: 'Minnie Mouse',
      preferredLanguage: 'en',
    });
  });

  it('ListUsers: uint64 offset and totalResult travel as JSON strings; the organization query by name', async () => {
    const page = await replay(
      [
        {
          source: 'user_service.proto ListUsersRequest/ListUsersResponse, object/v2 ListQuery/ListDetails',
          method: 'POST',
          path: '/zitadel.user.v2.UserService/ListUsers',
          request: {
            query: { offset: '100', limit: 50, asc: true },
            queries: [{ organizationIdQuery: { organizationId: ORG_ID } }],
          },
          response: { details: { totalResult: '101', timestamp: '2025-01-15T01:30:15Z' }, result: [] },
        },
      ],
      () => client().listUsers({ offset: 100, limit: 50 }),
    );
    expect(page).toEqual({ total: 101, users: [] });
  });

  it('AddHumanUser: organization, profile, email with returnCode, password as the oneof names them', async () => {
    const added = await replay(
      [
        {
          source: 'user_service.proto AddHumanUserRequest (password_type oneof, SetHumanEmail.verification)',
          method: 'POST',
          path: '/zitadel.user.v2.UserService/AddHumanUser',
          request: {
            username: 'minnie-mouse',
            organization: { orgId: ORG_ID },
            profile: { givenName: 'Minnie', familyName: 'Mouse', displayName: 'Minnie Mouse' },
            email: { email: 'minnie@mouse.com', returnCode: {} },
            password: { password: 'Secr3t-Password!' },
          },
          response: {
            userId: USER_ID,
            details: { sequence: '1', changeDate: '2025-01-15T01:30:15Z', resourceOwner: ORG_ID },
            emailCode: 'SKJD3F',
          },
        },
      ],
      () =>
        client().addHumanUser({
          username: 'minnie-mouse',
          email: 'minnie@mouse.com',
          givenName: 'Minnie',
          familyName: 'Mouse',
          displayName: 'Minnie Mouse',
          password: 'Secr3t-Password!',
          emailVerification: 'return_code',
        }),
    );
    expect(added).toEqual({ userId: USER_ID, emailCode: 'SKJD3F' });
  });

  it('AlreadyExists [errors] is the 409 of this API, without Zitadel’s text', async () => {
    const error = await replay(
      [
        {
          source: 'Connect error already_exists (HTTP 409), ErrorDetail COMMAND-k2unb',
          method: 'POST',
          path: '/zitadel.user.v2.UserService/AddHumanUser',
          request: {
            username: 'minnie',
            organization: { orgId: ORG_ID },
            profile: { givenName: 'Minnie', familyName: 'Mouse' },
            email: { email: 'minnie@mouse.com', isVerified: true },
          },
          ...connectError('already_exists', 409, 'COMMAND-k2unb', 'Errors.User.AlreadyExisting'),
        },
      ],
      () =>
        client()
          .addHumanUser({
            username: 'minnie',
            email: 'minnie@mouse.com',
            givenName: 'Minnie',
            familyName: 'Mouse',
            emailVerification: 'verified',
          })
          .catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).getStatus()).toBe(409);
    expect((error as ApiError).message).not.toContain('Errors.User');
  });

  it('ListAuthenticationMethodTypes: enum names in, names out', async () => {
    const methods = await replay(
      [
        {
          source: 'user_service.proto ListAuthenticationMethodTypesResponse, AuthenticationMethodType',
          method: 'POST',
          path: '/zitadel.user.v2.UserService/ListAuthenticationMethodTypes',
          request: { userId: USER_ID },
          response: {
            details: { totalResult: '2' },
            authMethodTypes: ['AUTHENTICATION_METHOD_TYPE_PASSWORD', 'AUTHENTICATION_METHOD_TYPE_TOTP'],
          },
        },
      ],
      () => client().listAuthenticationMethodTypes(USER_ID),
    );
    expect(methods).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD', 'AUTHENTICATION_METHOD_TYPE_TOTP']);
  });
});

describe('session service v2 [session-v2]', () => {
  const createSession = {
    source: 'session_service.proto CreateSessionRequest (CheckUser.search oneof, Duration lifetime)',
    method: 'POST' as const,
    path: '/zitadel.session.v2.SessionService/CreateSession',
    request: {
      checks: {
        user: { loginName: 'minnie-mouse@fabi.zitadel.app' },
        password: { password: 'Secr3t-Password!' },
      },
      lifetime: '300s',
    },
  };

  it('a password check: CreateSession, then the documented session read for its user', async () => {
    const check = await replay(
      [
        {
          ...createSession,
          response: {
            details: { sequence: '581', changeDate: '2023-06-14T05:32:38.977954Z', resourceOwner: ORG_ID },
            sessionId: '218480890961985793',
            sessionToken: 'yMDi6uVPJAcphbbz0LaxC07ihWkNTe7m0Xqch8SzfM5Cz3HSIQIDZ65x1f5Qal0jxz0MEyo-_zYcUg',
          },
        },
        {
          source: 'docs session-validation guide, session example',
          method: 'POST',
          path: '/zitadel.session.v2.SessionService/GetSession',
          request: {
            sessionId: '218480890961985793',
            sessionToken: 'yMDi6uVPJAcphbbz0LaxC07ihWkNTe7m0Xqch8SzfM5Cz3HSIQIDZ65x1f5Qal0jxz0MEyo-_zYcUg',
          },
          response: {
            session: {
              id: '218480890961985793',
              creationDate: '2023-06-14T05:32:38.977954Z',
              changeDate: '2023-06-14T05:42:11.631901Z',
              sequence: '582',
              factors: {
                user: {
                  verifiedAt: '2023-06-14T05:32:38.972712Z',
                  id: USER_ID,
                  loginName: 'minnie-mouse@fabi.zitadel.app',
                  displayName: 'Minnie Mouse',
                  organizationId: ORG_ID,
                },
                password: { verifiedAt: '2023-06-14T05:42:11.619484Z' },
              },
            },
          },
        },
      ],
      () => client().checkPassword('minnie-mouse@fabi.zitadel.app', 'Secr3t-Password!'),
    );
    expect(check.userId).toBe(USER_ID);
    expect(check.sessionId).toBe('218480890961985793');
  });

  it.each([
    ['a wrong password', 'invalid_argument', 400, 'COMMAND-3M0fs', InvalidCredentialsError],
    ['a locked user', 'failed_precondition', 400, 'COMMAND-JLK35', UserBlockedError],
  ] as const)('%s [errors]', async (_case, code, status, id, type) => {
    const error = await replay([{ ...createSession, ...connectError(code, status, id, 'refused') }], () =>
      client()
        .checkPassword('minnie-mouse@fabi.zitadel.app', 'Secr3t-Password!')
        .catch((e: unknown) => e),
    );
    expect(error).toBeInstanceOf(type);
  });
});

describe('settings service v2 [settings-v2]', () => {
  it('GetLoginSettings in the organization’s context; omitted booleans are false', async () => {
    const settings = await replay(
      [
        {
          source: 'settings_service.proto GetLoginSettingsRequest (object/v2 RequestContext), LoginSettings',
          method: 'POST',
          path: '/zitadel.settings.v2.SettingsService/GetLoginSettings',
          request: { ctx: { orgId: ORG_ID } },
          response: {
            details: { sequence: '12', changeDate: '2025-01-15T01:30:15Z', resourceOwner: ORG_ID },
            settings: {
              allowUsernamePassword: true,
              forceMfa: true,
              passkeysType: 'PASSKEYS_TYPE_ALLOWED',
              passwordCheckLifetime: '864000s',
              secondFactors: ['SECOND_FACTOR_TYPE_OTP'],
              resourceOwnerType: 'RESOURCE_OWNER_TYPE_ORG',
            },
          },
        },
      ],
      () => client().getLoginSettings(),
    );
    expect(settings).toEqual({
      allowUsernamePassword: true,
      allowExternalIdp: false,
      forceMfa: true,
      forceMfaLocalOnly: false,
    });
  });
});

describe('authorization service v2beta [authz-v2beta]', () => {
  it('ListAuthorizations by user, project and organization; roles of active authorizations only', async () => {
    const roles = await replay(
      [
        {
          source:
            'authorization_service.proto ListAuthorizationsRequest (filter/v2beta PaginationRequest, IDFilter)',
          method: 'POST',
          path: '/zitadel.authorization.v2beta.AuthorizationService/ListAuthorizations',
          request: {
            pagination: { limit: 100, asc: true },
            filters: [
              { userId: { id: USER_ID } },
              { projectId: { id: PROJECT_ID } },
              { organizationId: { id: ORG_ID } },
            ],
          },
          response: {
            pagination: { totalResult: '2', appliedLimit: '100' },
            authorizations: [
              {
                id: '69629040806489455',
                projectId: PROJECT_ID,
                projectName: 'users-api',
                projectOrganizationId: ORG_ID,
                organizationId: ORG_ID,
                creationDate: '2025-07-01T10:00:00Z',
                changeDate: '2025-07-01T10:00:00Z',
                state: 'STATE_ACTIVE',
                user: {
                  id: USER_ID,
                  preferredLoginName: 'minnie-mouse@fabi.zitadel.app',
                  displayName: 'Minnie Mouse',
                  avatarUrl: '',
                  organizationId: ORG_ID,
                },
                roles: ['admin', 'manager'],
              },
              {
                id: '69629040806489456',
                projectId: PROJECT_ID,
                organizationId: ORG_ID,
                state: 'STATE_INACTIVE',
                user: { id: USER_ID },
                roles: ['owner'],
              },
            ],
          },
        },
      ],
      () => client().getUserRoles(USER_ID),
    );
    expect(roles).toEqual(['admin', 'manager']);
  });

  it('CreateAuthorization with the project, organization and role keys', async () => {
    await replay(
      [
        {
          source: 'authorization_service.proto ListAuthorizations (none yet)',
          method: 'POST',
          path: '/zitadel.authorization.v2beta.AuthorizationService/ListAuthorizations',
          request: {
            pagination: { limit: 100, asc: true },
            filters: [
              { userId: { id: USER_ID } },
              { projectId: { id: PROJECT_ID } },
              { organizationId: { id: ORG_ID } },
            ],
          },
          response: { pagination: { totalResult: '0', appliedLimit: '100' } },
        },
        {
          source: 'authorization_service.proto CreateAuthorizationRequest/Response',
          method: 'POST',
          path: '/zitadel.authorization.v2beta.AuthorizationService/CreateAuthorization',
          request: { userId: USER_ID, projectId: PROJECT_ID, organizationId: ORG_ID, roleKeys: ['admin'] },
          response: { id: '69629040806489457', creationDate: '2025-07-01T10:00:00Z' },
        },
      ],
      () => client().setUserRoles(USER_ID, ['admin']),
    );
  });
});

describe('OIDC endpoints [oidc]', () => {
  const discovery = () => ({
    source: 'Zitadel discovery document (/.well-known/openid-configuration)',
    method: 'GET' as const,
    path: '/.well-known/openid-configuration',
    response: {
      issuer: baseUrl,
      authorization_endpoint: `${baseUrl}/oauth/v2/authorize`,
      token_endpoint: `${baseUrl}/oauth/v2/token`,
      introspection_endpoint: `${baseUrl}/oauth/v2/introspect`,
      userinfo_endpoint: `${baseUrl}/oidc/v1/userinfo`,
      revocation_endpoint: `${baseUrl}/oauth/v2/revoke`,
      end_session_endpoint: `${baseUrl}/oidc/v1/end_session`,
      device_authorization_endpoint: `${baseUrl}/oauth/v2/device_authorization`,
      jwks_uri: `${baseUrl}/oauth/v2/keys`,
      scopes_supported: ['openid', 'profile', 'email', 'phone', 'address', 'offline_access'],
      response_types_supported: ['code', 'id_token', 'id_token token'],
      grant_types_supported: [
        'authorization_code',
        'implicit',
        'refresh_token',
        'client_credentials',
        'urn:ietf:params:oauth:grant-type:jwt-bearer',
        'urn:ietf:params:oauth:grant-type:device_code',
      ],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: [
        'none',
        'client_secret_basic',
        'client_secret_post',
        'private_key_jwt',
      ],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
      code_challenge_methods_supported: ['S256'],
      request_uri_parameter_supported: false,
    },
  });

  it('introspects an opaque token (RFC 7662 §2.2 with Zitadel’s claims) as the API app', async () => {
    const claims = await replay(
      [
        discovery(),
        {
          source: 'RFC 7662 §2.1 request; Zitadel introspection response with role claims',
          method: 'POST',
          path: '/oauth/v2/introspect',
          request: { token: 'opaque-token-value', token_type_hint: 'access_token' },
          response: {
            active: true,
            scope: `openid urn:zitadel:iam:org:project:id:${PROJECT_ID}:aud urn:zitadel:iam:org:projects:roles`,
            client_id: 'reporting-service',
            token_type: 'Bearer',
            exp: Math.floor(Date.now() / 1000) + 3600,
            iat: Math.floor(Date.now() / 1000),
            nbf: Math.floor(Date.now() / 1000),
            sub: '69629050806489455',
            aud: ['reporting-service', PROJECT_ID],
            iss: baseUrl,
            jti: '69629050806489999',
            username: 'reporting-service',
            'urn:zitadel:iam:org:project:roles': { admin: { [ORG_ID]: 'fabi.zitadel.app' } },
          },
        },
      ],
      () =>
        client({
          introspection: { clientId: '69629060806489455@users-api', clientSecret: 's3cret' },
        }).introspectToken('opaque-token-value'),
    );
    expect(claims).toMatchObject({
      sub: '69629050806489455',
      aud: ['reporting-service', PROJECT_ID],
      roles: ['admin'],
    });
  });

  it('reads an inactive answer (RFC 7662 §2.2: only "active": false) as no token', async () => {
    const claims = await replay(
      [
        discovery(),
        {
          source: 'RFC 7662 §2.2 inactive response',
          method: 'POST',
          path: '/oauth/v2/introspect',
          request: { token: 'revoked-token' },
          response: { active: false },
        },
      ],
      () =>
        client({ introspection: { clientId: 'api', clientSecret: 's3cret' } }).introspectToken(
          'revoked-token',
        ),
    );
    expect(claims).toBeNull();
  });
});
