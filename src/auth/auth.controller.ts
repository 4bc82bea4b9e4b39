import { Body, Controller, Get, HttpCode, Post, Query, Req, Res } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import { parseCookie, stringifySetCookie } from 'cookie';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors/api-error.js';
import { LoginThrottledError } from '../common/rate-limit/login-failures.js';
import type { AppConfig } from '../config/app-config.js';
import { LoginRateLimit, RegisterRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { AuthService, OIDC_LOGIN_TTL_MS, type ClientInfo, type LoginOutcome } from './auth.service.js';
import {
  LoginCallbackQuery,
  LoginDto,
  LoginRedirectDto,
  LoginSessionDto,
  LogoutResponseDto,
} from './dto/login.dto.js';
import {
  RegisterDto,
  RegisterResponseDto,
  VerifyEmailDto,
  VerifyEmailResponseDto,
} from './dto/register.dto.js';
import { CurrentPrincipal, type Principal } from './principal.js';

const clientInfo = (request: FastifyRequest): ClientInfo => ({
  ip: request.ip ?? null,
  userAgent: request.headers['user-agent'],
});

/**
 * Binds a browser login's OIDC `state` to the browser that started it: set with the redirect, sent back only
 * to the callback's path (SameSite=Lax lets the top-level redirect from Zitadel carry it), read by no script.
 */
const STATE_COOKIE = 'users_api_login_state';

@ApiTags('authentication')
@Controller('api/users')
export class AuthController {
  private readonly stateCookie: { path: string; secure: boolean };

  constructor(
    private readonly auth: AuthService,
    config: ConfigService<AppConfig, true>,
  ) {
    const callback = new URL(config.get('zitadel', { infer: true }).redirectUri);
    this.stateCookie = { path: callback.pathname, secure: callback.protocol === 'https:' };
  }

  @Post('login')
  @HttpCode(200)
  @LoginRateLimit()
  @Endpoint({
    summary: 'Log in',
    description:
      'With `password`: the password is checked through Zitadel. If a password is enough, the answer is a ' +
      'session token with `redirect_url` (`LOGIN_REDIRECT_URL`, where the client goes next). If Zitadel ' +
      'wants more (a second factor enrolled or required by the login policy, or password logins switched ' +
      'off), the answer is `{redirect_url}` to Zitadel’s hosted login, as without a password. Without ' +
      '`password`: `redirect_url` points at the hosted login (OIDC code flow with PKCE) at once. Both ' +
      'redirects set an HttpOnly state cookie that `GET /api/users/login/callback` requires. Every failed ' +
      'password login (wrong password, unknown email, locked, deactivated or deleted account) answers the ' +
      'same 401, no sooner than `LOGIN_FAILURE_MIN_MS`; a suspended or unverified account gets 403 saying ' +
      'why only once its password was right. `RATE_LIMIT_LOGIN_FAILURES` failed logins for one account from ' +
      'one address answer 429 until the window ends. `bot_id` ties the session to a bot.',
    access: 'public',
    errors: [401, 403, 422, 429],
  })
  @ApiExtraModels(LoginSessionDto, LoginRedirectDto)
  @ApiOkResponse({
    description: 'A session token (with where to go next), or where to send the browser',
    schema: { oneOf: [{ $ref: getSchemaPath(LoginSessionDto) }, { $ref: getSchemaPath(LoginRedirectDto) }] },
  })
  async login(
    @Body() body: LoginDto,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<LoginSessionDto | LoginRedirectDto> {
    const rememberMe = body.remember_me ?? false;
    let outcome: LoginOutcome;
    try {
      outcome =
        body.password === undefined
          ? await this.auth.startOidcLogin({ loginHint: body.email, rememberMe, botId: body.bot_id })
          : await this.auth.loginWithPassword(
              { email: body.email, password: body.password, rememberMe, botId: body.bot_id },
              clientInfo(request),
            );
    } catch (error) {
      if (error instanceof LoginThrottledError) {
        void reply.header('Retry-After', String(error.retryAfterSeconds));
      }
      throw error;
    }
    if (outcome.kind === 'redirect') this.setStateCookie(reply, outcome.state, OIDC_LOGIN_TTL_MS / 1000);
    return outcome.body;
  }

  @Get('login/callback')
  @Endpoint({
    summary: 'Finish an OIDC login',
    description:
      'The identity provider redirects here with `code` and `state`; each state works once, and only in the ' +
      'browser that started the login (it must send the state cookie set with the redirect).',
    access: 'public',
    // 422: a parameter over its length limit; unknown parameters are ignored (RFC 6749 §4.1.2).
    errors: [400, 401, 403, 422],
  })
  @ApiOkResponse({ type: LoginSessionDto, description: 'The session token' })
  async completeLogin(
    @Query() query: LoginCallbackQuery,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<LoginSessionDto> {
    if (query.error) throw ApiError.unauthorized('The identity provider did not complete the login');
    if (!query.code || !query.state) throw ApiError.invalidRequest('code and state are required');
    const cookies = request.headers.cookie ? parseCookie(request.headers.cookie) : {};
    const session = await this.auth.completeOidcLogin(
      { code: query.code, state: query.state, boundState: cookies[STATE_COOKIE] },
      clientInfo(request),
    );
    this.setStateCookie(reply, '', 0);
    return session;
  }

  private setStateCookie(reply: FastifyReply, state: string, maxAgeSeconds: number): void {
    void reply.header(
      'Set-Cookie',
      stringifySetCookie({
        name: STATE_COOKIE,
        value: state,
        maxAge: maxAgeSeconds,
        path: this.stateCookie.path,
        httpOnly: true,
        secure: this.stateCookie.secure,
        sameSite: 'lax',
      }),
    );
  }

  @Post('logout')
  @HttpCode(200)
  @Endpoint({ summary: 'Log out: end the current session', access: 'authenticated' })
  @ApiOkResponse({ type: LogoutResponseDto, description: 'Logged out' })
  logout(@CurrentPrincipal() principal: Principal): Promise<LogoutResponseDto> {
    return this.auth.logout(principal);
  }

  @Post('register')
  @RegisterRateLimit()
  @Endpoint({
    summary: 'Register (when self-registration is enabled)',
    description:
      'Creates the user in Zitadel, which emails a verification code; login works after verify-email.',
    access: 'public',
    errors: [403, 409, 422],
  })
  @ApiCreatedResponse({ type: RegisterResponseDto, description: 'Registered; email verification pending' })
  register(@Body() body: RegisterDto): Promise<RegisterResponseDto> {
    return this.auth.register(body);
  }

  @Post('verify-email')
  @HttpCode(200)
  @Endpoint({
    summary: 'Verify the email address of a new registration',
    description:
      'Every wrong (user, code) pair answers the same 422, whatever the user’s status or existence. After 5 ' +
      'wrong codes for a user the code is dead until a new one is sent (`POST /api/users/verify-email/resend`, ' +
      'which also clears the count); otherwise the user id rests for up to an hour.',
    access: 'public',
    errors: [403, 422],
  })
  @ApiOkResponse({ type: VerifyEmailResponseDto, description: 'Verified; the user is active' })
  verifyEmail(@Body() body: VerifyEmailDto): Promise<VerifyEmailResponseDto> {
    return this.auth.verifyEmail({ userId: body.user_id, code: body.code });
  }
}
