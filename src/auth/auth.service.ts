import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import { LoginFailureThrottle } from '../common/rate-limit/login-failures.js';
import type { AppConfig } from '../config/app-config.js';
import type { AuthMethod } from '../sessions/entities/session.entity.js';
import { describeDevice } from '../sessions/device.js';
import { SessionsService } from '../sessions/sessions.service.js';
import type { User } from '../users/entities/user.entity.js';
import { UsersService } from '../users/users.service.js';
import {
  InvalidCredentialsError,
  namesFromDisplayName,
  UserBlockedError,
  ZitadelClient,
  ZitadelError,
} from '../zitadel/zitadel.client.js';
import type { AuthenticationMethodType } from '../zitadel/zitadel.types.js';
import type { LoginRedirectDto, LoginSessionDto, LogoutResponseDto } from './dto/login.dto.js';
import type { RegisterDto, RegisterResponseDto, VerifyEmailResponseDto } from './dto/register.dto.js';
import { OidcLoginState } from './entities/oidc-login-state.entity.js';
import type { Principal } from './principal.js';
import { SessionTokenService } from './session-token.service.js';

/** Where the request came from, recorded on the session. */
export interface ClientInfo {
  ip: string | null;
  userAgent: string | undefined;
}

/** How long a started browser login may take; also the lifetime of its state cookie. */
export const OIDC_LOGIN_TTL_MS = 10 * 60_000;
const INVALID_CREDENTIALS = 'Invalid email or password';

/** Enrolled methods that make a password alone not enough (Zitadel then asks for them in its login). */
const SECOND_FACTORS = new Set<AuthenticationMethodType>([
  'AUTHENTICATION_METHOD_TYPE_TOTP',
  'AUTHENTICATION_METHOD_TYPE_U2F',
  'AUTHENTICATION_METHOD_TYPE_OTP_SMS',
  'AUTHENTICATION_METHOD_TYPE_OTP_EMAIL',
]);

/** A password login ends in a session, or in the hosted login (whose `state` the controller binds). */
export type LoginOutcome =
  { kind: 'session'; body: LoginSessionDto } | { kind: 'redirect'; body: LoginRedirectDto; state: string };

function sameSecret(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
const randomToken = (bytes: number) => randomBytes(bytes).toString('base64url');

@Injectable()
export class AuthService {
  private readonly logger = new Logger(AuthService.name);
  private readonly auth: AppConfig['auth'];

  constructor(
    private readonly zitadel: ZitadelClient,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly tokens: SessionTokenService,
    @InjectRepository(OidcLoginState) private readonly loginStates: Repository<OidcLoginState>,
    private readonly failures: LoginFailureThrottle,
    config: ConfigService<AppConfig, true>,
  ) {
    this.auth = config.get('auth', { infer: true });
  }

  /**
   * Email + password: checked by Zitadel (this service never sees a password hash). Then, the password being
   * right, Zitadel decides whether it is enough: with a second factor enrolled, a login policy that demands
   * one, or password logins switched off, the answer is the hosted login (where the rest is checked) instead
   * of a session.
   */
  async loginWithPassword(
    input: { email: string; password: string; rememberMe: boolean; botId?: string },
    client: ClientInfo,
  ): Promise<LoginOutcome> {
    const started = Date.now();
    await this.failures.assertAllowed(input.email, client.ip);
    let check;
    try {
      check = await this.zitadel.checkPassword(input.email, input.password, {
        ip: client.ip ?? undefined,
        description: describeDevice(client.userAgent) ?? undefined,
      });
    } catch (error) {
      if (error instanceof InvalidCredentialsError || error instanceof UserBlockedError) {
        // Wrong password, unknown or deleted email, locked, deactivated or uninitialised user: Zitadel
        // refuses all of these before (or instead of) accepting the password, so none of them may say more
        // than "wrong": one body, and no sooner than LOGIN_FAILURE_MIN_MS after the request came in.
        await this.failures.recordFailure(input.email, client.ip);
        await sleep(Math.max(0, started + this.auth.loginFailureMinMs - Date.now()));
        if (error instanceof UserBlockedError)
          this.logger.log(`Password login refused: user ${error.reason}`);
        throw ApiError.unauthorized(INVALID_CREDENTIALS);
      }
      throw error;
    }
    // Only the password check was wanted; our own session table is what tokens are checked against.
    void this.zitadel.deleteSession(check.sessionId, check.sessionToken).catch(() => undefined);
    // The password is right from here on, so the answer may tell the account's state.
    // Both at once; the account's own answer (deleted, suspended, unverified) wins over the policy's.
    const [refreshed, enough] = await Promise.allSettled([
      this.refreshUser(check.userId),
      this.passwordIsEnough(check.userId),
    ]);
    if (refreshed.status === 'rejected') throw refreshed.reason;
    const user = refreshed.value;
    assertMayLogIn(user);
    if (enough.status === 'rejected') throw enough.reason;
    if (!enough.value) {
      return this.startOidcLogin({
        loginHint: input.email,
        rememberMe: input.rememberMe,
        botId: input.botId,
      });
    }
    const session = await this.openSession(user, {
      authMethod: 'password',
      rememberMe: input.rememberMe,
      client,
      botId: input.botId,
    });
    return { kind: 'session', body: session };
  }

  /**
   * Whether Zitadel lets a password alone sign this user in: not when the login policy forbids password
   * logins or forces MFA (a password login is a local one, so `forceMfaLocalOnly` does not exempt it), nor
   * when the user has enrolled a second factor (TOTP, U2F, OTP by SMS or email).
   */
  private async passwordIsEnough(zitadelUserId: string): Promise<boolean> {
    const [methods, policy] = await Promise.all([
      this.zitadel.listAuthenticationMethodTypes(zitadelUserId),
      this.zitadel.getLoginSettings(),
    ]);
    if (!policy.allowUsernamePassword || policy.forceMfa) return false;
    return !methods.some((method) => SECOND_FACTORS.has(method));
  }

  /**
   * No password (or more than a password needed): send the browser to Zitadel's login page (authorization
   * code flow with PKCE). The `state` goes back to the controller, which binds it to the browser (cookie).
   */
  async startOidcLogin(input: {
    loginHint: string;
    rememberMe: boolean;
    botId?: string;
  }): Promise<Extract<LoginOutcome, { kind: 'redirect' }>> {
    const codeVerifier = randomToken(48);
    const state = randomToken(32);
    const nonce = randomToken(32);
    // Pending logins nobody finished: cheap to drop here, with an index on expires_at.
    await this.loginStates.delete({ expiresAt: LessThan(new Date()) });
    await this.loginStates.insert({
      state,
      codeVerifier,
      nonce,
      rememberMe: input.rememberMe,
      botId: input.botId ?? null,
      expiresAt: new Date(Date.now() + OIDC_LOGIN_TTL_MS),
    });
    const redirectUrl = await this.zitadel.authorizationUrl({
      state,
      nonce,
      codeChallenge: createHash('sha256').update(codeVerifier).digest('base64url'),
      loginHint: input.loginHint,
    });
    return { kind: 'redirect', body: { redirect_url: redirectUrl }, state };
  }

  /** Zitadel redirected back: consume the state once, exchange the code, verify the ID token, open a session. */
  async completeOidcLogin(
    input: { code: string; state: string; boundState: string | undefined },
    client: ClientInfo,
  ): Promise<LoginSessionDto> {
    // Checked before the state is consumed, so a forged callback cannot use up the real browser's login.
    if (!input.boundState || !sameSecret(input.boundState, input.state)) {
      throw ApiError.invalidRequest(
        'This login was not started in this browser (its state cookie is missing or belongs to another ' +
          'login); start the login again',
      );
    }
    const consumed = await this.loginStates
      .createQueryBuilder()
      .delete()
      .where('state = :state AND expires_at > now()', { state: input.state })
      .returning('code_verifier, nonce, remember_me, bot_id')
      .execute();
    const pending = (
      consumed.raw as { code_verifier: string; nonce: string; remember_me: boolean; bot_id: string | null }[]
    )[0];
    if (!pending)
      throw ApiError.invalidRequest('Unknown, used or expired login state; start the login again');

    let tokens;
    try {
      tokens = await this.zitadel.exchangeCode({
        code: input.code,
        codeVerifier: pending.code_verifier,
        nonce: pending.nonce,
      });
    } catch (error) {
      if (error instanceof ZitadelError) {
        throw ApiError.invalidRequest('The authorization code is invalid or expired; start the login again');
      }
      throw error;
    }
    let claims;
    try {
      claims = await this.zitadel.verifyIdToken(tokens.idToken, pending.nonce);
    } catch (error) {
      this.logger.warn({ err: error }, 'ID token rejected');
      throw ApiError.unauthorized('The identity provider’s answer could not be verified');
    }
    const user = await this.refreshUser(claims.sub);
    assertMayLogIn(user);
    return this.openSession(user, {
      authMethod: 'oidc',
      rememberMe: pending.remember_me,
      client,
      idToken: tokens.idToken,
      botId: pending.bot_id ?? undefined,
    });
  }

  async logout(principal: Principal): Promise<LogoutResponseDto> {
    const reply: LogoutResponseDto = { status: 'logged_out', redirect_url: '/' };
    if (!principal.sessionId || !principal.userId) return reply;
    const session = await this.sessions.terminate(principal.userId, principal.sessionId);
    if (session.authMethod === 'oidc' && session.idToken) {
      reply.end_session_url = await this.zitadel.endSessionUrl({ idTokenHint: session.idToken });
    }
    return reply;
  }

  async register(input: RegisterDto): Promise<RegisterResponseDto> {
    if (!this.auth.registrationEnabled) throw ApiError.forbidden('Self-registration is disabled');
    await this.users.requireEmailAndUsernameFree(input.email, input.username);
    let userId: string;
    try {
      ({ userId } = await this.zitadel.addHumanUser({
        username: input.username,
        email: input.email,
        ...namesFromDisplayName(input.display_name),
        displayName: input.display_name,
        password: input.password,
        emailVerification: 'send_code',
      }));
    } catch (error) {
      // Zitadel's own policy may be stricter than ours; its text stays in the log.
      if (error instanceof ZitadelError && error.kind === 'invalid_argument') {
        this.logger.warn({ err: error }, 'Zitadel refused a registration');
        throw ApiError.validation([
          { field: 'password', message: 'password does not meet the password policy' },
        ]);
      }
      throw error;
    }
    const user = await this.refreshUser(userId);
    return {
      user_id: user.id,
      status: 'pending_verification',
      message: 'Check your email to verify your account',
    };
  }

  /**
   * Every wrong (user, code) pair answers the same 422, no sooner than LOGIN_FAILURE_MIN_MS, whether the
   * user is unknown, deleted, suspended, already verified or pending with another code; only the right code
   * of a pending user answers 200. After
   * EMAIL_CODE_MAX_ATTEMPTS wrong codes for a user, the code is dead here (and in dev-idp, which counts the
   * same way) until a new one is sent: every further attempt, the right code included, answers the same 422.
   */
  async verifyEmail(input: { userId: string; code: string }): Promise<VerifyEmailResponseDto> {
    const started = Date.now();
    // Alike in time too: an unknown user must not answer sooner than a pending one asked of Zitadel.
    const wrongCode = async () => {
      await sleep(Math.max(0, started + this.auth.loginFailureMinMs - Date.now()));
      return ApiError.validation([{ field: 'code', message: 'The verification code is wrong or expired' }]);
    };
    if (await this.failures.emailCodeDead(input.userId)) throw await wrongCode();
    const user = await this.users.findById(input.userId);
    if (!user || user.status !== 'pending_verification') {
      await this.failures.recordEmailCodeFailure(input.userId);
      throw await wrongCode();
    }
    try {
      await this.zitadel.verifyEmail(user.zitadelId, input.code);
    } catch (error) {
      if (
        error instanceof ZitadelError &&
        (error.kind === 'invalid_argument' ||
          error.kind === 'failed_precondition' ||
          error.kind === 'not_found')
      ) {
        await this.failures.recordEmailCodeFailure(input.userId);
        throw await wrongCode();
      }
      throw error;
    }
    const refreshed = await this.refreshUser(user.zitadelId);
    // The code was right, so the account's state may be told.
    if (refreshed.status !== 'active') throw ApiError.forbidden(`This account is ${refreshed.status}`);
    return { user_id: user.id, status: 'active', message: 'Email verified; you can log in now' };
  }

  /** Zitadel is the source of truth for profile, state and project roles: copy them before deciding. */
  private async refreshUser(zitadelUserId: string): Promise<User> {
    // Role grants belong to the user's organization, which the user's own record names.
    const remote = await this.zitadel.getUser(zitadelUserId);
    const roles = remote ? await this.zitadel.getUserRoles(zitadelUserId, remote.orgId || undefined) : [];
    if (!remote) {
      const local = await this.users.findByZitadelId(zitadelUserId);
      if (local) await this.users.markDeleted(local);
      throw ApiError.forbidden('This account has been deleted');
    }
    return this.users.syncFromZitadel(remote, roles);
  }

  private async openSession(
    user: User,
    options: {
      authMethod: AuthMethod;
      rememberMe: boolean;
      client: ClientInfo;
      idToken?: string;
      botId?: string;
    },
  ): Promise<LoginSessionDto> {
    const lifetimeSeconds = options.rememberMe ? this.auth.rememberMeTtlSeconds : this.auth.sessionTtlSeconds;
    const expiresAt = new Date(Date.now() + lifetimeSeconds * 1000);
    const session = await this.sessions.create({
      userId: user.id,
      expiresAt,
      authMethod: options.authMethod,
      deviceInfo: describeDevice(options.client.userAgent),
      ipAddress: options.client.ip,
      idToken: options.idToken,
      botId: options.botId,
    });
    await this.users.recordLogin(user.id);
    return {
      session_token: this.tokens.sign({ userId: user.id, sessionId: session.id, expiresAt }),
      token_type: 'Bearer',
      expires_at: expiresAt.toISOString(),
      user_id: user.id,
      redirect_url: this.auth.loginRedirectUrl,
    };
  }
}

function assertMayLogIn(user: User): void {
  switch (user.status) {
    case 'active':
      return;
    case 'pending_verification':
      throw ApiError.forbidden('Verify your email address before logging in');
    case 'suspended':
      throw ApiError.forbidden(
        user.suspensionReason
          ? `This account is suspended: ${user.suspensionReason}`
          : 'This account is suspended',
      );
    case 'inactive':
      throw ApiError.forbidden('This account is deactivated');
    case 'deleted':
      throw ApiError.forbidden('This account has been deleted');
  }
}
