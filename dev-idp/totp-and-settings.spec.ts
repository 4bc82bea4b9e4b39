import { Code } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Secret, TOTP } from 'otpauth';
import {
  type TestProvider,
  apiClient,
  createUser,
  expectZitadelError,
  rawConnect,
  startTestProvider,
} from './test-support.js';

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
      (await api('listAuthenticationMethodTypes', { userId: user.userId })).body.authMethodTypes;
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);

    const registered = await api('registerTOTP', { userId: user.userId });
    expect(registered.code).toBe(0);
    const secret = registered.body.secret as string;
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(registered.body.uri).toContain(`secret=${secret}`);
    // Not usable before it is verified.
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);

    const wrong = await api('verifyTOTPRegistration', { userId: user.userId, code: '000000' });
    expectZitadelError(wrong, Code.InvalidArgument, 'DEVIDP-TOTP-CODE');
    const code = new TOTP({ secret: Secret.fromBase32(secret) }).generate();
    expect((await api('verifyTOTPRegistration', { userId: user.userId, code })).code).toBe(0);
    expect(await methods()).toEqual([
      'AUTHENTICATION_METHOD_TYPE_PASSWORD',
      'AUTHENTICATION_METHOD_TYPE_TOTP',
    ]);

    const again = await api('registerTOTP', { userId: user.userId });
    expectZitadelError(again, Code.FailedPrecondition, 'DEVIDP-TOTP-READY');
    expect((await api('removeTOTP', { userId: user.userId })).code).toBe(0);
    expect(await methods()).toEqual(['AUTHENTICATION_METHOD_TYPE_PASSWORD']);
  });

  it('answers unknown users and malformed bodies as Zitadel does, never with a 500', async () => {
    expectZitadelError(await api('registerTOTP', { userId: '999999' }), Code.NotFound, 'QUERY-Dfbg2');
    expectZitadelError(await api('listAuthenticationMethodTypes', { userId: '999999' }), Code.NotFound);
    const user = await createUser(t.idp);
    expect(
      await rawConnect(
        t.idp,
        'zitadel.user.v2.UserService/VerifyTOTPRegistration',
        `{"userId": "${user.userId}", "code": 123}`,
      ),
    ).toEqual({ status: 400, code: 'invalid_argument' });
    expectZitadelError(
      await api('verifyTOTPRegistration', { userId: user.userId, code: '' }),
      Code.InvalidArgument,
    );
    const none = await api('verifyTOTPRegistration', { userId: user.userId, code: '123456' });
    expectZitadelError(none, Code.FailedPrecondition, 'DEVIDP-TOTP-NONE');
    expectZitadelError(await apiClient(t.idp, null)('getLoginSettings'), Code.Unauthenticated, 'AUTH-7mr9m');
  });

  it('serves the login policy it was started with, and changes it at run time', async () => {
    const read = async () => (await api('getLoginSettings')).body.settings;
    expect(await read()).toMatchObject({ allowUsernamePassword: true, forceMfa: true });
    t.idp.setLoginSettings({ forceMfa: false, allowUsernamePassword: false });
    expect(await read()).toMatchObject({ allowUsernamePassword: false, forceMfa: false });
  });
});
