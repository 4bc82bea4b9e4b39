import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import {
  CONFIDENTIAL_SECRET,
  POST_LOGOUT_URI,
  REDIRECT_URI,
  type TestProvider,
  apiClient,
  createUser,
  exchangeCode,
  form,
  pkce,
  signIn,
  startTestProvider,
} from './test-support.js';

describe('dev-idp OIDC provider', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;
  let jwks: ReturnType<typeof createRemoteJWKSet>;

  beforeAll(async () => {
    t = await startTestProvider();
    api = apiClient(t.idp);
    jwks = createRemoteJWKSet(new URL(`${t.idp.url}/oauth/v2/keys`));
  });
  afterAll(() => t.idp.close());

  const authorizeUrl = (params: Record<string, string>) => {
    const { challenge } = pkce();
    const query = new URLSearchParams({
      client_id: 'web-app',
      redirect_uri: REDIRECT_URI,
      response_type: 'code',
      scope: 'openid email',
      state: 's1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      ...params,
    });
    return `${t.idp.url}/oauth/v2/authorize?${query.toString()}`;
  };

  const introspect = async (token: string) => {
    const basic = Buffer.from(`backend:${CONFIDENTIAL_SECRET}`).toString('base64');
    const init = form({ token });
    init.headers = { ...(init.headers as Record<string, string>), authorization: `Basic ${basic}` };
    const res = await fetch(`${t.idp.url}/oauth/v2/introspect`, init);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('publishes the discovery document and a JWKS', async () => {
    const res = await fetch(`${t.idp.url}/.well-known/openid-configuration`);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toMatchObject({
      issuer: t.idp.issuer,
      authorization_endpoint: `${t.idp.issuer}/oauth/v2/authorize`,
      token_endpoint: `${t.idp.issuer}/oauth/v2/token`,
      userinfo_endpoint: `${t.idp.issuer}/oidc/v1/userinfo`,
      jwks_uri: `${t.idp.issuer}/oauth/v2/keys`,
      end_session_endpoint: `${t.idp.issuer}/oidc/v1/end_session`,
      introspection_endpoint: `${t.idp.issuer}/oauth/v2/introspect`,
      revocation_endpoint: `${t.idp.issuer}/oauth/v2/revoke`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      id_token_signing_alg_values_supported: ['RS256'],
    });
    const keys = (await (await fetch(`${t.idp.url}/oauth/v2/keys`)).json()) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(keys.keys[0]).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', kid: expect.any(String) });
    expect(keys.keys[0]?.d).toBeUndefined();
  });

  it('runs the code flow with PKCE end to end; tokens verify against the JWKS', async () => {
    const user = await createUser(t.idp, { verified: true });
    await api('createAuthorization', {
      userId: user.userId,
      projectId: t.idp.projectId,
      roleKeys: ['manager'],
    });

    const { location, verifier, status } = await signIn(t.idp, {
      loginName: user.email,
      password: user.password,
      nonce: 'n-0S6_WzA2Mj',
      state: 'xyz',
    });
    expect(status).toBe(302);
    expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
    expect(location.searchParams.get('state')).toBe('xyz');
    const code = location.searchParams.get('code') ?? '';
    expect(code).not.toBe('');

    const token = await exchangeCode(t.idp, { code, client_id: 'web-app', code_verifier: verifier });
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({
      token_type: 'Bearer',
      expires_in: expect.any(Number),
      scope: 'openid profile email',
    });

    const roles = { manager: { [t.idp.orgId]: expect.any(String) } };
    const id = await jwtVerify(String(token.body.id_token), jwks, {
      issuer: t.idp.issuer,
      audience: 'web-app',
    });
    expect(id.protectedHeader).toMatchObject({ alg: 'RS256', kid: expect.any(String) });
    expect(id.payload).toMatchObject({
      iss: t.idp.issuer,
      sub: user.userId,
      aud: ['web-app', t.idp.projectId],
      nonce: 'n-0S6_WzA2Mj',
      email: user.email,
      email_verified: true,
      preferred_username: user.username,
      name: 'Test User',
      'urn:zitadel:iam:org:project:roles': roles,
      [`urn:zitadel:iam:org:project:${t.idp.projectId}:roles`]: roles,
    });
    expect(id.payload.exp! - id.payload.iat!).toBeGreaterThan(0);

    const access = await jwtVerify(String(token.body.access_token), jwks, {
      issuer: t.idp.issuer,
      audience: t.idp.projectId,
    });
    expect(access.payload).toMatchObject({
      sub: user.userId,
      aud: ['web-app', t.idp.projectId],
      client_id: 'web-app',
      jti: expect.any(String),
      'urn:zitadel:iam:org:project:roles': roles,
    });

    const info = await fetch(`${t.idp.url}/oidc/v1/userinfo`, {
      headers: { authorization: `Bearer ${String(token.body.access_token)}` },
    });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({
      sub: user.userId,
      email: user.email,
      email_verified: true,
      preferred_username: user.username,
      name: 'Test User',
      'urn:zitadel:iam:org:project:roles': roles,
    });

    // The id token is not an access token.
    const wrongKind = await fetch(`${t.idp.url}/oidc/v1/userinfo`, {
      headers: { authorization: `Bearer ${String(token.body.id_token)}` },
    });
    expect(wrongKind.status).toBe(401);
    expect(wrongKind.headers.get('www-authenticate')).toContain('invalid_token');

    const introspected = await introspect(String(token.body.access_token));
    expect(introspected.body).toMatchObject({
      active: true,
      sub: user.userId,
      client_id: 'web-app',
      aud: ['web-app', t.idp.projectId],
      iss: t.idp.issuer,
      exp: expect.any(Number),
      iat: expect.any(Number),
      scope: 'openid profile email',
    });

    // Deactivating the user ends the token's life for userinfo and introspection.
    await api('deactivateUser', { userId: user.userId });
    expect((await introspect(String(token.body.access_token))).body).toEqual({ active: false });
  });

  it('rejects a reused code and revokes the token the code bought', async () => {
    const user = await createUser(t.idp);
    const { location, verifier } = await signIn(t.idp, { loginName: user.email, password: user.password });
    const code = location.searchParams.get('code') ?? '';
    const first = await exchangeCode(t.idp, { code, client_id: 'web-app', code_verifier: verifier });
    expect(first.status).toBe(200);
    const replay = await exchangeCode(t.idp, { code, client_id: 'web-app', code_verifier: verifier });
    expect(replay.status).toBe(400);
    expect(replay.body).toMatchObject({ error: 'invalid_grant', error_description: expect.any(String) });
    expect((await introspect(String(first.body.access_token))).body).toEqual({ active: false });
  });

  it('rejects a wrong code_verifier, a wrong redirect_uri and an unknown code with invalid_grant', async () => {
    const user = await createUser(t.idp);
    const a = await signIn(t.idp, { loginName: user.email, password: user.password });
    const wrongVerifier = await exchangeCode(t.idp, {
      code: a.location.searchParams.get('code') ?? '',
      client_id: 'web-app',
      code_verifier: pkce().verifier,
    });
    expect(wrongVerifier).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const b = await signIn(t.idp, { loginName: user.email, password: user.password });
    const wrongRedirect = await exchangeCode(t.idp, {
      code: b.location.searchParams.get('code') ?? '',
      client_id: 'web-app',
      code_verifier: b.verifier,
      redirect_uri: 'http://127.0.0.1:3999/other',
    });
    expect(wrongRedirect).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const unknown = await exchangeCode(t.idp, {
      code: 'nope',
      client_id: 'web-app',
      code_verifier: b.verifier,
    });
    expect(unknown).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const unsupported = await exchangeCode(t.idp, { grant_type: 'password', client_id: 'web-app' });
    expect(unsupported).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
  });

  it('authenticates a confidential client at the token endpoint', async () => {
    const user = await createUser(t.idp);
    const a = await signIn(t.idp, { clientId: 'backend', loginName: user.email, password: user.password });
    const code = a.location.searchParams.get('code') ?? '';
    const noSecret = await exchangeCode(t.idp, { code, client_id: 'backend', code_verifier: a.verifier });
    expect(noSecret).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    const b = await signIn(t.idp, { clientId: 'backend', loginName: user.email, password: user.password });
    const ok = await exchangeCode(
      t.idp,
      { code: b.location.searchParams.get('code') ?? '', code_verifier: b.verifier },
      { id: 'backend', secret: CONFIDENTIAL_SECRET },
    );
    expect(ok.status).toBe(200);
    const wrongClient = await exchangeCode(t.idp, {
      code: 'x',
      client_id: 'nobody',
      code_verifier: b.verifier,
    });
    expect(wrongClient).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
  });

  it('shows the login page, escaping what it echoes, and re-shows it on a wrong password', async () => {
    const page = await fetch(authorizeUrl({ login_hint: '"><script>alert(1)</script>' }));
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const html = await page.text();
    expect(html).toContain('<form method="post" action="/ui/login">');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&quot;&gt;&lt;script&gt;');

    const user = await createUser(t.idp);
    const failed = await signIn(t.idp, { loginName: user.email, password: 'Wrong-Password-1' });
    expect(failed.status).toBe(200);
    expect(failed.html).toContain('Invalid login name or password.');
    expect(failed.html).toContain(`value="${user.email}"`);

    await api('lockUser', { userId: user.userId });
    const locked = await signIn(t.idp, { loginName: user.email, password: user.password });
    expect(locked.html).toContain('locked');
  });

  it('never redirects to an unregistered redirect_uri or for an unknown client', async () => {
    const bad = await fetch(authorizeUrl({ redirect_uri: 'https://evil.example/cb' }), {
      redirect: 'manual',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('location')).toBeNull();
    expect(await bad.text()).toContain('redirect_uri');

    const prefix = await fetch(authorizeUrl({ redirect_uri: `${REDIRECT_URI}/x` }), { redirect: 'manual' });
    expect(prefix.status).toBe(400);

    const unknownClient = await fetch(authorizeUrl({ client_id: 'nobody' }), { redirect: 'manual' });
    expect(unknownClient.status).toBe(400);
    expect(unknownClient.headers.get('location')).toBeNull();

    // The same check guards the form post: tampered hidden fields do not redirect either.
    const tampered = await fetch(
      `${t.idp.url}/ui/login`,
      form({ client_id: 'web-app', redirect_uri: 'https://evil.example/cb', loginName: 'a', password: 'b' }),
    );
    expect(tampered.status).toBe(400);
    expect(tampered.headers.get('location')).toBeNull();
  });

  it('requires PKCE with S256, reporting it to the registered redirect_uri', async () => {
    const cases: Array<Record<string, string>> = [
      { code_challenge_method: 'plain' },
      { code_challenge: '' },
      { response_type: 'token' },
    ];
    for (const params of cases) {
      const res = await fetch(authorizeUrl(params), { redirect: 'manual' });
      expect(res.status).toBe(302);
      const location = new URL(res.headers.get('location') ?? '');
      expect(`${location.origin}${location.pathname}`).toBe(REDIRECT_URI);
      expect(location.searchParams.get('error')).toMatch(/^(invalid_request|unsupported_response_type)$/);
      expect(location.searchParams.get('state')).toBe('s1');
    }
  });

  it('revokes access tokens', async () => {
    const user = await createUser(t.idp);
    const a = await signIn(t.idp, { loginName: user.email, password: user.password });
    const token = await exchangeCode(t.idp, {
      code: a.location.searchParams.get('code') ?? '',
      client_id: 'web-app',
      code_verifier: a.verifier,
    });
    const revoke = await fetch(
      `${t.idp.url}/oauth/v2/revoke`,
      form({ token: String(token.body.access_token), client_id: 'web-app' }),
    );
    expect(revoke.status).toBe(200);
    expect((await introspect(String(token.body.access_token))).body).toEqual({ active: false });
    const info = await fetch(`${t.idp.url}/oidc/v1/userinfo`, {
      headers: { authorization: `Bearer ${String(token.body.access_token)}` },
    });
    expect(info.status).toBe(401);
  });

  it('introspection needs a confidential client', async () => {
    const anonymous = await fetch(`${t.idp.url}/oauth/v2/introspect`, form({ token: 'x' }));
    expect(anonymous.status).toBe(401);
    const publicClient = await fetch(
      `${t.idp.url}/oauth/v2/introspect`,
      form({ token: 'x', client_id: 'web-app' }),
    );
    expect(publicClient.status).toBe(401);
    expect((await introspect('not-a-token')).body).toEqual({ active: false });
  });

  it('ends the session: redirects to a registered post-logout URI only', async () => {
    const user = await createUser(t.idp);
    const a = await signIn(t.idp, { loginName: user.email, password: user.password });
    const token = await exchangeCode(t.idp, {
      code: a.location.searchParams.get('code') ?? '',
      client_id: 'web-app',
      code_verifier: a.verifier,
    });
    const idToken = String(token.body.id_token);
    const end = (params: Record<string, string>) =>
      fetch(`${t.idp.url}/oidc/v1/end_session?${new URLSearchParams(params).toString()}`, {
        redirect: 'manual',
      });

    const ok = await end({ id_token_hint: idToken, post_logout_redirect_uri: POST_LOGOUT_URI, state: 'bye' });
    expect(ok.status).toBe(302);
    expect(ok.headers.get('location')).toBe(`${POST_LOGOUT_URI}?state=bye`);

    const unregistered = await end({
      id_token_hint: idToken,
      post_logout_redirect_uri: 'https://evil.example/',
    });
    expect(unregistered.status).toBe(200);
    expect(unregistered.headers.get('location')).toBeNull();
    expect(await unregistered.text()).toContain('signed out');

    const forged = await end({ id_token_hint: `${idToken.slice(0, -4)}AAAA` });
    expect(forged.status).toBe(400);
    expect(decodeProtectedHeader(idToken).kid).toBeDefined();
  });
  it('gives machine users opaque or JWT tokens by client credentials; introspection reads both', async () => {
    const opaqueUser = await t.idp.addMachineUser({ username: `svc-o-${Date.now()}`, roles: ['admin'] });
    const jwtUser = await t.idp.addMachineUser({
      username: `svc-j-${Date.now()}`,
      accessTokenType: 'jwt',
      roles: ['admin'],
    });
    const scope = `openid urn:zitadel:iam:org:project:id:${t.idp.projectId}:aud urn:zitadel:iam:org:projects:roles`;
    const grant = async (user: { clientId: string; clientSecret: string }, secret = user.clientSecret) => {
      const init = form({ grant_type: 'client_credentials', scope });
      init.headers = {
        ...(init.headers as Record<string, string>),
        authorization: `Basic ${Buffer.from(`${user.clientId}:${secret}`).toString('base64')}`,
      };
      const res = await fetch(`${t.idp.url}/oauth/v2/token`, init);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    expect((await grant(opaqueUser, 'wrong-secret')).status).toBe(401);
    const opaque = String((await grant(opaqueUser)).body.access_token);
    const jwt = String((await grant(jwtUser)).body.access_token);
    expect(opaque).not.toContain('.');
    expect(jwt.split('.')).toHaveLength(3);
    for (const [token, user] of [
      [opaque, opaqueUser],
      [jwt, jwtUser],
    ] as const) {
      expect((await introspect(token)).body).toMatchObject({
        active: true,
        sub: user.userId,
        client_id: user.clientId,
        aud: [user.clientId, t.idp.projectId],
        'urn:zitadel:iam:org:project:roles': { admin: { [t.idp.orgId]: expect.any(String) } },
      });
    }
    await t.idp.setMachineUserActive(opaqueUser.userId, false);
    expect((await introspect(opaque)).body).toEqual({ active: false });
    expect((await grant(opaqueUser)).status).toBe(400);
    expect((await introspect('not-a-token-we-issued')).body).toEqual({ active: false });
  });
});
