import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, Repository } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
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

const OIDC_LOGIN_TTL_MS = 10 * 60_000;
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
    config: ConfigService<AppConfig, true>,
  ) {
    this.auth = config.get('auth', { infer: true });
  }

  /** Email + password: checked by Zitadel (this service never sees a password hash), then a local session. */
  async loginWithPassword(
    input: { email: string; password: string; rememberMe: boolean },
    client: ClientInfo,
  ): Promise<LoginSessionDto> {
    const started = Date.now();
    let zitadelUserId: string;
    try {
      const check = await this.zitadel.checkPassword(input.email, input.password, {
        ip: client.ip ?? undefined,
        description: describeDevice(client.userAgent) ?? undefined,
      });
      zitadelUserId = check.userId;
      // Only the password check was wanted; our own session table is what tokens are checked against.
      void this.zitadel.deleteSession(check.sessionId, check.sessionToken).catch(() => undefined);
    } catch (error) {
      if (error instanceof InvalidCredentialsError) {
        // Zitadel no longer knows a deleted user; saying so is more useful than "wrong password".
        const deleted = await this.users.isDeletedEmail(input.email);
        // Unknown email and wrong password answer alike, and take alike long.
        await sleep(Math.max(0, started + this.auth.loginFailureMinMs - Date.now()));
        if (deleted) throw ApiError.forbidden('This account has been deleted');
        throw ApiError.unauthorized('Invalid email or password');
      }
      if (error instanceof UserBlockedError) throw await this.blockedLogin(error, input.email);
      throw error;
    }
    const user = await this.refreshUser(zitadelUserId);
    assertMayLogIn(user);
    return this.openSession(user, { authMethod: 'password', rememberMe: input.rememberMe, client });
  }

  /** No password: send the browser to Zitadel's login page (authorization code flow with PKCE). */
  async startOidcLogin(input: { loginHint: string; rememberMe: boolean }): Promise<LoginRedirectDto> {
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
      expiresAt: new Date(Date.now() + OIDC_LOGIN_TTL_MS),
    });
    const redirectUrl = await this.zitadel.authorizationUrl({
      state,
      nonce,
      codeChallenge: createHash('sha256').update(codeVerifier).digest('base64url'),
      loginHint: input.loginHint,
    });
    return { redirect_url: redirectUrl };
  }

  /** Zitadel redirected back: consume the state once, exchange the code, verify the ID token, open a session. */
  async completeOidcLogin(
    input: { code: string; state: string },
    client: ClientInfo,
  ): Promise<LoginSessionDto> {
    const consumed = await this.loginStates
      .createQueryBuilder()
      .delete()
      .where('state = :state AND expires_at > now()', { state: input.state })
      .returning('code_verifier, nonce, remember_me')
      .execute();
    const pending = (consumed.raw as { code_verifier: string; nonce: string; remember_me: boolean }[])[0];
    if (!pending)
      throw ApiError.invalidRequest('Unknown, used or expired login state; start the login again');

    let tokens;
    try {
      tokens = await this.zitadel.exchangeCode({ code: input.code, codeVerifier: pending.code_verifier });
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

  async verifyEmail(input: { userId: string; code: string }): Promise<VerifyEmailResponseDto> {
    const user = await this.users.requireById(input.userId);
    const verified: VerifyEmailResponseDto = {
      user_id: user.id,
      status: 'active',
      message: 'Email verified; you can log in now',
    };
    if (user.status !== 'pending_verification') {
      if (user.status === 'active') return verified;
      throw ApiError.forbidden(`This account is ${user.status}`);
    }
    try {
      await this.zitadel.verifyEmail(user.zitadelId, input.code);
    } catch (error) {
      if (
        error instanceof ZitadelError &&
        (error.kind === 'invalid_argument' || error.kind === 'failed_precondition')
      ) {
        throw ApiError.validation([{ field: 'code', message: 'The verification code is wrong or expired' }]);
      }
      throw error;
    }
    const refreshed = await this.refreshUser(user.zitadelId);
    if (refreshed.status !== 'active') throw ApiError.forbidden(`This account is ${refreshed.status}`);
    return verified;
  }

  /** Zitadel is the source of truth for profile, state and project roles: copy them before deciding. */
  private async refreshUser(zitadelUserId: string): Promise<User> {
    const [remote, roles] = await Promise.all([
      this.zitadel.getUser(zitadelUserId),
      this.zitadel.getUserRoles(zitadelUserId),
    ]);
    if (!remote) {
      const local = await this.users.findByZitadelId(zitadelUserId);
      if (local) await this.users.markDeleted(local);
      throw ApiError.forbidden('This account has been deleted');
    }
    return this.users.syncFromZitadel(remote, roles);
  }

  private async openSession(
    user: User,
    options: { authMethod: AuthMethod; rememberMe: boolean; client: ClientInfo; idToken?: string },
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
    });
    await this.users.recordLogin(user.id);
    return {
      session_token: this.tokens.sign({ userId: user.id, sessionId: session.id, expiresAt }),
      token_type: 'Bearer',
      expires_at: expiresAt.toISOString(),
      user_id: user.id,
    };
  }

  private async blockedLogin(error: UserBlockedError, email: string): Promise<ApiError> {
    if (error.reason === 'locked') {
      return ApiError.forbidden('This account is locked after too many failed logins; ask an administrator');
    }
    if (error.reason === 'initial') {
      return ApiError.forbidden('This account is not set up yet: follow the invitation email first');
    }
    const local = await this.users.findByEmailOrUsername(email, email);
    return ApiError.forbidden(
      local?.status === 'suspended' ? 'This account is suspended' : 'This account is deactivated',
    );
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
