import { Body, Controller, Get, HttpCode, Post, Query, Req } from '@nestjs/common';
import { ApiCreatedResponse, ApiExtraModels, ApiOkResponse, ApiTags, getSchemaPath } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors/api-error.js';
import { LoginRateLimit, RegisterRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { AuthService, type ClientInfo } from './auth.service.js';
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

@ApiTags('authentication')
@Controller('api/users')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @HttpCode(200)
  @LoginRateLimit()
  @Endpoint({
    summary: 'Log in',
    description:
      'With `password`: the password is checked through Zitadel and a session token is returned. ' +
      'Without: `redirect_url` points at the identity provider’s login page (OIDC code flow with PKCE); ' +
      '`GET /api/users/login/callback` completes it. Wrong password and unknown email both give 401; a ' +
      'suspended, deactivated, deleted or unverified user gets 403 saying why.',
    access: 'public',
    errors: [401, 403, 422],
  })
  @ApiExtraModels(LoginSessionDto, LoginRedirectDto)
  @ApiOkResponse({
    description: 'A session token, or where to send the browser',
    schema: { oneOf: [{ $ref: getSchemaPath(LoginSessionDto) }, { $ref: getSchemaPath(LoginRedirectDto) }] },
  })
  login(@Body() body: LoginDto, @Req() request: FastifyRequest): Promise<LoginSessionDto | LoginRedirectDto> {
    const rememberMe = body.remember_me ?? false;
    if (body.password === undefined) return this.auth.startOidcLogin({ loginHint: body.email, rememberMe });
    return this.auth.loginWithPassword(
      { email: body.email, password: body.password, rememberMe },
      clientInfo(request),
    );
  }

  @Get('login/callback')
  @Endpoint({
    summary: 'Finish an OIDC login',
    description: 'The identity provider redirects here with `code` and `state`; each state works once.',
    access: 'public',
    // 422: a parameter over its length limit; unknown parameters are ignored (RFC 6749 §4.1.2).
    errors: [401, 403, 422],
  })
  @ApiOkResponse({ type: LoginSessionDto, description: 'The session token' })
  completeLogin(
    @Query() query: LoginCallbackQuery,
    @Req() request: FastifyRequest,
  ): Promise<LoginSessionDto> {
    if (query.error) throw ApiError.unauthorized('The identity provider did not complete the login');
    if (!query.code || !query.state) throw ApiError.invalidRequest('code and state are required');
    return this.auth.completeOidcLogin({ code: query.code, state: query.state }, clientInfo(request));
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
    access: 'public',
    errors: [403, 404, 422],
  })
  @ApiOkResponse({ type: VerifyEmailResponseDto, description: 'Verified; the user is active' })
  verifyEmail(@Body() body: VerifyEmailDto): Promise<VerifyEmailResponseDto> {
    return this.auth.verifyEmail({ userId: body.user_id, code: body.code });
  }
}
