import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Secret, TOTP } from 'otpauth';
import { type TestProvider, apiClient, createUser, startTestProvider } from './test-support.js';

function errorId(body: Record<string, unknown>): unknown {
  return (body.details as Array<{ id: string }>)[0]?.id;
}

describe('dev-idp TOTP, authentication methods and login settings', () => {
  let t: TestProvider;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    t = await startTestProvider({ loginSettings: { forceMfa: true } });
    api = apiClient(t.idp);
  });
  afterAll(() => t.idp.close());

  it('registers, verifies and removes a TOTP generator; the methods list follows', async () => {
    const user = await createUser(t.idp);
    const methods = async () =>
      (await api('GET', `/v2/users/${user.userId}/authentication_methods`)).body.authMethodTypes;
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);

    const registered = await api('POST', `/v2/users/${user.userId}/totp`, {});
    expect(registered.status).toBe(200);
    const secret = registered.body.secret as string;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(registered.body.uri).toContain(`secret=${secret}`);
    // Not usable before it is verified.
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);

    const wrong = await api('POST', `/v2/users/${user.userId}/totp/verify`, { code: '000000' });
    expect({ status: wrong.status, id: errorId(wrong.body) }).toEqual({
      status: 400,
      id: 'DEVIDP-TOTP-CODE',
    });
    const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
    expect((await api('POST', `/v2/users/${user.userId}/totp/verify`, { code })).status).toBe(200);
    expect(await methods()).toEqual([
      'AUTHENTICATION_METHOD_TYPE_PASSWORD',
      'AUTHENTICATION_METHOD_TYPE_TOTP',
    ]);

    const again = await api('POST', `/v2/users/${user.userId}/totp`, {});
    expect({ status: again.status, id: errorId(again.body) }).toEqual({
      status: 400,
      id: 'DEVIDP-TOTP-READY',
    });
    expect((await api('DELETE', `/v2/users/${user.userId}/totp`)).status).toBe(200);
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);
  });

  it('answers unknown users and malformed bodies as Zitadel does, never with a 500', async () => {
    expect((await api('POST', '/v2/users/999999/totp', {})).status).toBe(404);
    expect((await api('GET', '/v2/users/999999/authentication_methods')).status).toBe(404);
    const user = await createUser(t.idp);
    expect((await api('POST', `/v2/users/${user.userId}/totp/verify`, { code: 123 })).status).toBe(400);
    const none = await api('POST', `/v2/users/${user.userId}/totp/verify`, { code: '123456' });
    expect({ status: none.status, id: errorId(none.body) }).toEqual({ status: 400, id: 'DEVIDP-TOTP-NONE' });
    expect((await apiClient(t.idp, null)('GET', '/v2/settings/login')).status).toBe(401);
  });

  it('serves the login policy it was started with, and changes it at run time', async () => {
    const read = async () => (await api('GET', `/v2/settings/login?ctx.orgId=${t.idp.orgId}`)).body.settings;
    expect(await read()).toMatchObject({ allowUsernamePassword: true, forceMfa: true });
    t.idp.setLoginSettings({ forceMfa: false, allowUsernamePassword: false });
    expect(await read()).toMatchObject({ allowUsernamePassword: false, forceMfa: false });
  });
});
