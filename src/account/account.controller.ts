import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Req, Res } from '@nestjs/common';
import { ApiAcceptedResponse, ApiBody, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ClientInfo } from '../auth/auth.service.js';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { CurrentActor, type Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { uuidParam } from '../common/http/params.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { LoginThrottledError } from '../common/rate-limit/login-failures.js';
import { AccountRecoveryRateLimit, UserUpdateRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { AccountService } from './account.service.js';
import {
  AcceptedDto,
  AccountErasedDto,
  AccountExportDto,
  ChangePasswordDto,
  EmailChangedDto,
  EmailChangePendingDto,
  EmailDto,
  EraseAccountDto,
  PasswordChangedDto,
  PasswordResetConfirmDto,
  PasswordResetDoneDto,
  PasswordResetRequestDto,
  ResendVerificationDto,
  VerifyEmailChangeDto,
} from './dto/account.dto.js';

const clientInfo = (request: FastifyRequest): ClientInfo => ({
  ip: request.ip ?? null,
  userAgent: request.headers['user-agent'],
});
const requestIdOf = (request: FastifyRequest) => String(request.id);

/** A throttled account's 429 carries Retry-After, as the login's does. */
async function withRetryAfter<T>(reply: FastifyReply, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof LoginThrottledError)
      void reply.header('Retry-After', String(error.retryAfterSeconds));
    throw error;
  }
}

/**
 * Account self-service (issue 20): every flow goes through Zitadel's user service v2 (dev-idp in embedded
 * mode). The story of each is in docs/account.md.
 */
@ApiTags('account')
@Controller('api/users')
export class AccountController {
  constructor(private readonly account: AccountService) {}

  @Post('password/reset')
  @HttpCode(202)
  @AccountRecoveryRateLimit()
  @Endpoint({
    summary: 'Forgotten password: mail a reset code',
    description:
      'Always 202 with the same body, and no sooner than `LOGIN_FAILURE_MIN_MS`, whether or not the address ' +
      'belongs to an account. For an active account Zitadel mails a code (dev-idp logs it), at most ' +
      '`RATE_LIMIT_ACCOUNT_EMAILS` per account; a new code replaces the previous one.',
    access: 'public',
    errors: [422],
  })
  @ApiAcceptedResponse({ type: AcceptedDto, description: 'Accepted (whatever the account)' })
  requestPasswordReset(
    @Body() body: PasswordResetRequestDto,
    @Req() request: FastifyRequest,
  ): Promise<AcceptedDto> {
    return this.account.requestPasswordReset(body.email, requestIdOf(request));
  }

  @Post('password/reset/confirm')
  @HttpCode(200)
  @AccountRecoveryRateLimit()
  @Endpoint({
    summary: 'Forgotten password: set a new one with the mailed code',
    description:
      'Names the account by `user_id` or `email`. A new password that breaks Zitadel’s password policy is 422 ' +
      'naming the rule. Every other failure (unknown account, wrong, expired or used code) is the same 422 on ' +
      '`code`; after 5 wrong codes the code is dead and a new reset must be requested. Success ends every ' +
      'session of the user.',
    access: 'public',
    errors: [422],
  })
  @ApiOkResponse({ type: PasswordResetDoneDto, description: 'Password set; all sessions ended' })
  confirmPasswordReset(
    @Body() body: PasswordResetConfirmDto,
    @Req() request: FastifyRequest,
  ): Promise<PasswordResetDoneDto> {
    return this.account.confirmPasswordReset(
      { userId: body.user_id, email: body.email, code: body.code, newPassword: body.new_password },
      requestIdOf(request),
    );
  }

  @Post('verify-email/resend')
  @HttpCode(202)
  @AccountRecoveryRateLimit()
  @Endpoint({
    summary: 'Resend the verification code of a pending registration',
    description:
      'Always 202 with the same body, whatever the account’s existence or state. For a registration still ' +
      'waiting for its code, Zitadel mails a new one (the old one dies, and so does its count of wrong ' +
      'guesses), at most `RATE_LIMIT_ACCOUNT_EMAILS` per account.',
    access: 'public',
    errors: [422],
  })
  @ApiAcceptedResponse({ type: AcceptedDto, description: 'Accepted (whatever the account)' })
  resendVerification(
    @Body() body: ResendVerificationDto,
    @Req() request: FastifyRequest,
  ): Promise<AcceptedDto> {
    return this.account.resendVerification(body.email, requestIdOf(request));
  }

  @Post('me/password')
  @HttpCode(200)
  @Endpoint({
    summary: 'Change my password',
    description:
      'Checked by Zitadel against the current password. A wrong one is 403 and counts as a failed login for ' +
      'the account from this address (`RATE_LIMIT_LOGIN_FAILURES`, then 429). A new password that breaks ' +
      'Zitadel’s policy is 422 naming the rule. Success ends the user’s other sessions; the current one stays.',
    access: 'authenticated',
    errors: [404, 422],
  })
  @ApiOkResponse({ type: PasswordChangedDto, description: 'Changed' })
  changePassword(
    @Body() body: ChangePasswordDto,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PasswordChangedDto> {
    return withRetryAfter(reply, () =>
      this.account.changePassword(
        principal,
        { currentPassword: body.current_password, newPassword: body.new_password },
        clientInfo(request),
        requestIdOf(request),
      ),
    );
  }

  @Put('me/email')
  @HttpCode(202)
  @UserUpdateRateLimit()
  @Endpoint({
    summary: 'Change my email address (verified with a code)',
    description:
      'Zitadel mails a code to the new address; the current address stays the account’s (for logins too) ' +
      'until `POST /api/users/me/email/verify`. An address another account uses or waits for is 409.',
    access: 'authenticated',
    errors: [404, 409, 422],
  })
  @ApiAcceptedResponse({ type: EmailChangePendingDto, description: 'Waiting for the code' })
  changeMyEmail(
    @Body() body: EmailDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentActor() actor: Actor,
  ): Promise<EmailChangePendingDto> {
    // A Zitadel service account calling with its own token has no local profile.
    if (!principal.userId) throw ApiError.userNotFound();
    return this.account.requestEmailChange(principal.userId, body.email, actor);
  }

  @Put(':id/email')
  @HttpCode(202)
  @UserUpdateRateLimit()
  @Endpoint({
    summary: 'Change a user’s email address (verified with a code)',
    description:
      'As `PUT /api/users/me/email`, for the user named by the path (an administrator for another user). The ' +
      'user verifies the new address with the mailed code.',
    access: { selfOr: 'admin:users' },
    errors: [404, 409, 422],
  })
  @ApiAcceptedResponse({ type: EmailChangePendingDto, description: 'Waiting for the code' })
  changeUserEmail(
    @Param('id', uuidParam('user id')) id: string,
    @Body() body: EmailDto,
    @CurrentActor() actor: Actor,
  ): Promise<EmailChangePendingDto> {
    return this.account.requestEmailChange(id, body.email, actor);
  }

  @Post('me/email/verify')
  @HttpCode(200)
  @Endpoint({
    summary: 'Confirm my new email address with its code',
    description:
      'The new address replaces the old one. A wrong or expired code is 422; after 5 wrong codes the code ' +
      'is dead (change the address again for a new one). 409 when no change is waiting.',
    access: 'authenticated',
    errors: [404, 409, 422],
  })
  @ApiOkResponse({ type: EmailChangedDto, description: 'Verified; the new address is the account’s' })
  verifyMyEmail(
    @Body() body: VerifyEmailChangeDto,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
  ): Promise<EmailChangedDto> {
    return this.account.verifyEmailChange(principal, body.code, requestIdOf(request));
  }

  @Get('me/export')
  @Endpoint({
    summary: 'Everything this service holds about me',
    description:
      'One JSON document: profile, preferences, every session (ended ones too), the audit entries about the ' +
      'caller, and the uploaded avatar’s metadata. Passwords are never held here.',
    access: 'authenticated',
    errors: [404],
  })
  @ApiOkResponse({ type: AccountExportDto, description: 'The export' })
  exportMyData(@CurrentPrincipal() principal: Principal): Promise<AccountExportDto> {
    return this.account.export(principal);
  }

  @Delete('me')
  @HttpCode(200)
  @Endpoint({
    summary: 'Erase my account',
    description:
      'Confirmed by `password`, or without it by a session that began less than 5 minutes ago. The user is ' +
      'deleted in Zitadel, every session ends, preferences and the uploaded avatar are deleted, the profile ' +
      'is anonymised, and audit entries stay with their personal data redacted (docs/account.md says what ' +
      'is kept and why). A wrong password is 403 and counts as a failed login.',
    access: 'authenticated',
    errors: [404, 422],
  })
  @ApiBody({ type: EraseAccountDto, required: false })
  @ApiOkResponse({ type: AccountErasedDto, description: 'Erased' })
  eraseMyAccount(
    // A class, not `| undefined`: the union would erase the type the validation pipe reads.
    @Body() body: EraseAccountDto,
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AccountErasedDto> {
    return withRetryAfter(reply, () =>
      this.account.erase(principal, body.password, clientInfo(request), requestIdOf(request)),
    );
  }
}
