import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { DataSource } from 'typeorm';
import { toAuditEventDto } from '../audit/dto/audit-event.dto.js';
import { AuditService } from '../audit/audit.service.js';
import type { ClientInfo } from '../auth/auth.service.js';
import type { Principal } from '../auth/principal.js';
import type { Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { LoginFailureThrottle } from '../common/rate-limit/login-failures.js';
import type { AppConfig } from '../config/app-config.js';
import { toSessionDto } from '../sessions/dto/session.dto.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { toSettingsDto } from '../settings/dto/settings.dto.js';
import { SettingsService } from '../settings/settings.service.js';
import { UserAvatar } from '../users/avatars/entities/user-avatar.entity.js';
import { UserSetting } from '../settings/entities/user-setting.entity.js';
import type { User } from '../users/entities/user.entity.js';
import { UsersService } from '../users/users.service.js';
import {
  InvalidCredentialsError,
  UserBlockedError,
  ZitadelClient,
  ZitadelError,
} from '../zitadel/zitadel.client.js';
import {
  EXPORT_MAX_ITEMS,
  type AcceptedDto,
  type AccountErasedDto,
  type AccountExportDto,
  type EmailChangedDto,
  type EmailChangePendingDto,
  type PasswordChangedDto,
  type PasswordResetDoneDto,
} from './dto/account.dto.js';
import { PASSWORD_POLICY_ERROR_IDS, PasswordPolicyService } from '../zitadel/password-policy.service.js';

/** A session younger than this confirms an erasure without the password ("a fresh login"). */
export const ERASURE_FRESH_LOGIN_MS = 5 * 60_000;

const ACCEPTED: AcceptedDto = {
  status: 'accepted',
  message: 'If the address belongs to an account that needs it, a code is on its way',
};
const WRONG_CODE = 'The code is wrong or expired';

/** Zitadel's answers to a wrong, expired, used or missing code. */
const isWrongCode = (error: unknown) =>
  error instanceof ZitadelError &&
  (error.kind === 'invalid_argument' || error.kind === 'failed_precondition' || error.kind === 'not_found') &&
  !(error.errorId !== undefined && PASSWORD_POLICY_ERROR_IDS.has(error.errorId));

const anonymous = (requestId: string | null): Actor => ({ userId: null, zitadelId: 'anonymous', requestId });
const actorOf = (user: User, requestId: string | null): Actor => ({
  userId: user.id,
  zitadelId: user.zitadelId,
  requestId,
});

/**
 * Account self-service through Zitadel's user service v2: password reset and change, email change with a
 * code, resending a registration's code, and the user's own data (export, erasure). This service never sees
 * a password hash or a code's value beyond passing them to Zitadel.
 *
 * The anonymous steps (reset request, resend) answer alike whatever the account, and no sooner than
 * LOGIN_FAILURE_MIN_MS; their Zitadel call runs after the answer, so its time cannot tell anything either.
 * Codes are counted per account here as well as in Zitadel (PASSWORD_CODE_MAX_ATTEMPTS, EMAIL_CODE_MAX_ATTEMPTS).
 * Session and status changes go through SessionsService and UsersService, like every other change.
 */
@Injectable()
export class AccountService {
  private readonly logger = new Logger(AccountService.name);
  private readonly minAnswerMs: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly zitadel: ZitadelClient,
    private readonly users: UsersService,
    private readonly sessions: SessionsService,
    private readonly settings: SettingsService,
    private readonly audit: AuditService,
    private readonly failures: LoginFailureThrottle,
    private readonly passwords: PasswordPolicyService,
    config: ConfigService<AppConfig, true>,
  ) {
    this.minAnswerMs = config.get('auth', { infer: true }).loginFailureMinMs;
  }

  // ---- forgotten password ---------------------------------------------------------------------

  async requestPasswordReset(email: string, requestId: string | null): Promise<AcceptedDto> {
    const started = Date.now();
    const user = await this.users.findByEmail(email);
    if (user?.status === 'active' && (await this.failures.takeAccountEmail(`password:${user.id}`))) {
      this.detached('password reset', async () => {
        await this.zitadel.requestPasswordReset(user.zitadelId);
        // Zitadel's new code replaces the old one: its wrong guesses start from zero too.
        await this.failures.clearPasswordCodeFailures(user.id);
        await this.dataSource.transaction((manager) =>
          this.audit.record(manager, {
            actor: anonymous(requestId),
            targetUserId: user.id,
            action: 'user.password_reset_requested',
          }),
        );
      });
    }
    await this.padTo(started);
    return ACCEPTED;
  }

  /**
   * Every failure (unknown account, wrong, expired or dead code, an account that may not log in) answers
   * the same 422, no sooner than LOGIN_FAILURE_MIN_MS. A weak new password is refused first, whatever the
   * account: that answer says nothing about it.
   */
  async confirmPasswordReset(
    input: { userId?: string; email?: string; code: string; newPassword: string },
    requestId: string | null,
  ): Promise<PasswordResetDoneDto> {
    const started = Date.now();
    if ((input.userId === undefined) === (input.email === undefined)) {
      throw ApiError.validation([{ field: 'user_id', message: 'send exactly one of user_id and email' }]);
    }
    await this.passwords.assertAcceptable('new_password', input.newPassword);
    const user = input.userId
      ? await this.users.findById(input.userId)
      : await this.users.findByEmail(input.email!);
    const subject = user?.id ?? `unknown:${(input.userId ?? input.email!).toLowerCase()}`;
    const wrongCode = async (count: boolean) => {
      if (count) await this.failures.recordPasswordCodeFailure(subject);
      await this.padTo(started);
      return ApiError.validation([{ field: 'code', message: WRONG_CODE }]);
    };
    if (await this.failures.passwordCodeDead(subject)) throw await wrongCode(false);
    if (!user || user.status !== 'active') throw await wrongCode(true);
    try {
      await this.zitadel.changePassword(user.zitadelId, input.newPassword, {
        verificationCode: input.code.trim(),
      });
    } catch (error) {
      if (isWrongCode(error)) throw await wrongCode(true);
      throw this.policyRefusal(error, 'new_password');
    }
    await this.failures.clearPasswordCodeFailures(user.id);
    await this.dataSource.transaction(async (manager) => {
      const ended = await this.sessions.terminateAll(user.id, manager);
      await this.audit.record(manager, {
        actor: actorOf(user, requestId),
        targetUserId: user.id,
        action: 'user.password_reset',
        changes: { terminated_sessions: { before: null, after: ended } },
      });
    });
    return { status: 'password_reset', message: 'Password changed; every session was ended, log in again' };
  }

  // ---- change password ------------------------------------------------------------------------

  /**
   * A wrong current password is 403 and counts as a failed login for the account and address
   * (RATE_LIMIT_LOGIN_FAILURES), so this route cannot be used to guess passwords faster than the login.
   */
  async changePassword(
    principal: Principal,
    input: { currentPassword: string; newPassword: string },
    client: ClientInfo,
    requestId: string | null,
  ): Promise<PasswordChangedDto> {
    const started = Date.now();
    const user = await this.currentUser(principal);
    await this.failures.assertAllowed(user.email, client.ip);
    await this.passwords.assertAcceptable('new_password', input.newPassword);
    try {
      await this.zitadel.changePassword(user.zitadelId, input.newPassword, {
        currentPassword: input.currentPassword,
      });
    } catch (error) {
      if (error instanceof InvalidCredentialsError) {
        await this.failures.recordFailure(user.email, client.ip);
        await this.padTo(started);
        throw ApiError.forbidden('The current password is wrong');
      }
      throw this.policyRefusal(error, 'new_password');
    }
    const ended = await this.dataSource.transaction(async (manager) => {
      const count = principal.sessionId
        ? await this.sessions.terminateOthers(user.id, principal.sessionId, manager)
        : await this.sessions.terminateAll(user.id, manager);
      await this.audit.record(manager, {
        actor: actorOf(user, requestId),
        targetUserId: user.id,
        action: 'user.password_changed',
        changes: { terminated_sessions: { before: null, after: count } },
      });
      return count;
    });
    return { status: 'password_changed', terminated_sessions: ended };
  }

  // ---- change email ---------------------------------------------------------------------------

  /**
   * The new address is recorded as pending here first (so the event Zitadel sends about the change keeps
   * the old one), then set in Zitadel, which mails it a code. The old address stays the account's, for
   * logins too, until POST /api/users/me/email/verify.
   */
  async requestEmailChange(targetId: string, email: string, actor: Actor): Promise<EmailChangePendingDto> {
    const user = await this.users.requireById(targetId);
    if (user.status !== 'active')
      throw ApiError.conflict(`The email of a ${user.status} account cannot change`);
    if (user.email.toLowerCase() === email.toLowerCase()) {
      throw ApiError.validation([{ field: 'email', message: 'email is already the account’s address' }]);
    }
    await this.users.requireEmailFree(email, user.id);
    const before = user.pendingEmail;
    await this.users.setPendingEmail(user.id, email);
    try {
      await this.zitadel.setEmail(user.zitadelId, email);
    } catch (error) {
      await this.users.setPendingEmail(user.id, before).catch(() => undefined);
      // Zitadel's own address rules may be stricter than ours.
      if (error instanceof ZitadelError && error.kind === 'invalid_argument') {
        this.logger.warn({ err: error }, 'Zitadel refused an email address');
        throw ApiError.validation([{ field: 'email', message: 'email is not an address Zitadel accepts' }]);
      }
      throw error;
    }
    await this.failures.clearEmailCodeFailures(user.id);
    await this.dataSource.transaction((manager) =>
      this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.email_change_requested',
        changes: { pending_email: { before, after: email } },
      }),
    );
    return { user_id: user.id, status: 'pending_verification', email: user.email, pending_email: email };
  }

  async verifyEmailChange(
    principal: Principal,
    code: string,
    requestId: string | null,
  ): Promise<EmailChangedDto> {
    const started = Date.now();
    const user = await this.currentUser(principal);
    if (!user.pendingEmail) throw ApiError.conflict('No email change is waiting for a code');
    const wrongCode = async () => {
      await this.padTo(started);
      return ApiError.validation([{ field: 'code', message: WRONG_CODE }]);
    };
    if (await this.failures.emailCodeDead(user.id)) throw await wrongCode();
    try {
      await this.zitadel.verifyEmail(user.zitadelId, code.trim());
    } catch (error) {
      if (isWrongCode(error)) {
        await this.failures.recordEmailCodeFailure(user.id);
        throw await wrongCode();
      }
      throw error;
    }
    const [remote, roles] = await Promise.all([
      this.zitadel.getUser(user.zitadelId),
      this.zitadel.getUserRoles(user.zitadelId),
    ]);
    if (!remote) throw ApiError.userNotFound();
    const updated = await this.users.syncFromZitadel(remote, roles);
    await this.dataSource.transaction((manager) =>
      this.audit.record(manager, {
        actor: actorOf(user, requestId),
        targetUserId: user.id,
        action: 'user.email_changed',
        changes: { email: { before: user.email, after: updated.email } },
      }),
    );
    return { user_id: user.id, status: 'verified', email: updated.email };
  }

  // ---- resend a registration's code -------------------------------------------------------------

  async resendVerification(email: string, requestId: string | null): Promise<AcceptedDto> {
    const started = Date.now();
    const user = await this.users.findByEmail(email);
    if (
      user?.status === 'pending_verification' &&
      (await this.failures.takeAccountEmail(`verify:${user.id}`))
    ) {
      this.detached('verification resend', async () => {
        await this.zitadel.resendEmailCode(user.zitadelId);
        await this.failures.clearEmailCodeFailures(user.id);
        await this.dataSource.transaction((manager) =>
          this.audit.record(manager, {
            actor: anonymous(requestId),
            targetUserId: user.id,
            action: 'user.verification_resent',
          }),
        );
      });
    }
    await this.padTo(started);
    return ACCEPTED;
  }

  // ---- the user's own data ----------------------------------------------------------------------

  async export(principal: Principal): Promise<AccountExportDto> {
    const user = await this.currentUser(principal);
    const [settings, sessions, events, avatar] = await Promise.all([
      this.settings.get(user.id),
      this.sessions.listAllForUser(user.id, EXPORT_MAX_ITEMS),
      this.audit.listAllAbout(user.id, EXPORT_MAX_ITEMS),
      this.dataSource.getRepository(UserAvatar).findOne({
        where: { userId: user.id },
        select: { userId: true, contentType: true, sha256: true, updatedAt: true },
      }),
    ]);
    return {
      exported_at: new Date().toISOString(),
      profile: {
        user_id: user.id,
        zitadel_id: user.zitadelId,
        org_id: user.orgId,
        username: user.username,
        email: user.email,
        pending_email: user.pendingEmail ?? null,
        display_name: user.displayName,
        avatar_url: user.avatarUrl,
        status: user.status,
        roles: user.roles,
        suspension_reason: user.suspensionReason,
        suspended_at: user.suspendedAt?.toISOString() ?? null,
        suspended_until: user.suspendedUntil?.toISOString() ?? null,
        last_login: user.lastLogin?.toISOString() ?? null,
        created_at: user.createdAt.toISOString(),
        updated_at: user.updatedAt.toISOString(),
      },
      settings: toSettingsDto(settings),
      sessions: sessions.map((session) => ({
        ...toSessionDto(session),
        status: session.status,
        auth_method: session.authMethod,
        terminated_at: session.terminatedAt?.toISOString() ?? null,
      })),
      audit_events: events.map(toAuditEventDto),
      avatar: avatar
        ? {
            uploaded: true,
            content_type: avatar.contentType,
            sha256: avatar.sha256,
            updated_at: avatar.updatedAt.toISOString(),
          }
        : { uploaded: false, content_type: null, sha256: null, updated_at: null },
    };
  }

  /**
   * Erasure on the user's own request, confirmed by their password or a session younger than
   * ERASURE_FRESH_LOGIN_MS. Zitadel deletes the user first (if that fails, nothing changes here); then, in one
   * transaction, the sessions end, preferences and the uploaded avatar are deleted, the row is anonymised
   * (kept as `deleted` so audit entries keep their target) and the audit entries about the user are
   * redacted, and the erasure itself is recorded.
   */
  async erase(
    principal: Principal,
    password: string | undefined,
    client: ClientInfo,
    requestId: string | null,
  ): Promise<AccountErasedDto> {
    const started = Date.now();
    const user = await this.currentUser(principal);
    if (password !== undefined) {
      await this.failures.assertAllowed(user.email, client.ip);
      try {
        const check = await this.zitadel.checkPassword({ userId: user.zitadelId }, password, {
          ip: client.ip ?? undefined,
        });
        void this.zitadel.deleteSession(check.sessionId, check.sessionToken).catch(() => undefined);
      } catch (error) {
        if (error instanceof InvalidCredentialsError || error instanceof UserBlockedError) {
          await this.failures.recordFailure(user.email, client.ip);
          await this.padTo(started);
          throw ApiError.forbidden('The password is wrong');
        }
        throw error;
      }
    } else {
      const since = principal.sessionId ? await this.sessions.startedAt(user.id, principal.sessionId) : null;
      if (!since || Date.now() - since.getTime() > ERASURE_FRESH_LOGIN_MS) {
        throw ApiError.forbidden('Confirm the erasure with your password, or log in again first');
      }
    }
    await this.zitadel.deleteUser(user.zitadelId);
    const actor = actorOf(user, requestId);
    const erasedAt = new Date();
    await this.dataSource.transaction(async (manager) => {
      const ended = await this.sessions.terminateAll(user.id, manager);
      await manager.getRepository(UserSetting).delete({ userId: user.id });
      await manager.getRepository(UserAvatar).delete({ userId: user.id });
      await this.users.anonymise(user.id, manager);
      await this.audit.redact(manager, user.id);
      await this.audit.record(manager, {
        actor,
        targetUserId: user.id,
        action: 'user.erased',
        changes: { terminated_sessions: { before: null, after: ended } },
      });
    });
    return { user_id: user.id, status: 'erased', erased_at: erasedAt.toISOString() };
  }

  // ---- helpers ----------------------------------------------------------------------------------

  private async currentUser(principal: Principal): Promise<User> {
    // A Zitadel service account calling with its own token has no local profile.
    if (!principal.userId) throw ApiError.userNotFound();
    return this.users.requireById(principal.userId);
  }

  /** Zitadel's policy may be stricter than the one it reported (an organization's own): its refusal is 422. */
  private policyRefusal(error: unknown, field: string): unknown {
    if (
      error instanceof ZitadelError &&
      error.errorId !== undefined &&
      PASSWORD_POLICY_ERROR_IDS.has(error.errorId)
    ) {
      this.logger.warn({ err: error }, 'Zitadel refused a new password');
      return ApiError.validation([{ field, message: `${field} does not meet the password policy` }]);
    }
    return error;
  }

  private async padTo(started: number): Promise<void> {
    await sleep(Math.max(0, started + this.minAnswerMs - Date.now()));
  }

  /** Work that must not change the answer or its timing; its failure is logged. */
  private detached(what: string, work: () => Promise<void>): void {
    void work().catch((error: unknown) => this.logger.warn({ err: error }, `Account ${what} failed`));
  }
}
