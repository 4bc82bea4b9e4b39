import {
  Body,
  Controller,
  Delete,
  Get,
  Header,
  Headers,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  Res,
} from '@nestjs/common';
import { ApiCreatedResponse, ApiHeader, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuditService } from '../audit/audit.service.js';
import { AuditEventListDto, toAuditEventDto } from '../audit/dto/audit-event.dto.js';
import { CurrentPrincipal, isInstanceWide, type Principal } from '../auth/principal.js';
import { CurrentActor, type Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { versionEtag } from '../common/http/etag.js';
import { DEFAULT_PAGE_SIZE, PageQuery } from '../common/http/pagination.js';
import { uuidParam } from '../common/http/params.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { UserListRateLimit, UserUpdateRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { ListUsersQuery, UserListDto, userListJson } from './dto/list-users.dto.js';
import { toUserDetailDto, UserDetailDto } from './dto/user-detail.dto.js';
import { toUserProfileDto, UserProfileDto } from './dto/user-profile.dto.js';
import {
  CreateUserDto,
  SuspendUserDto,
  UpdateUserDto,
  UpdateUserResponseDto,
  UserActivatedDto,
  UserDeletedDto,
  UserSuspendedDto,
} from './dto/user-writes.dto.js';
import type { User } from './entities/user.entity.js';
import { UserAdminService, type Caller } from './user-admin.service.js';
import { UsersService } from './users.service.js';

const IF_MATCH = ApiHeader({
  name: 'If-Match',
  required: false,
  description: 'The ETag of the user as last read; a mismatch answers 412 and changes nothing',
});
const ETAG_HEADER = { ETag: { description: 'The user’s version, for If-Match', schema: { type: 'string' } } };

const isAdmin = (principal: Principal) => principal.permissions.has('admin:users');

const callerOf = (principal: Principal, actor: Actor): Caller => ({
  actor,
  isAdmin: isAdmin(principal),
  instanceWide: isInstanceWide(principal),
  orgId: principal.orgId,
});

/**
 * The organization a list covers: the caller's own; with `iam:users`, the one named by `org_id`, or every
 * organization (null) when none is named.
 */
function listedOrganization(principal: Principal, requested: string | undefined): string | null {
  if (isInstanceWide(principal)) return requested ?? null;
  if (requested !== undefined && requested !== principal.orgId) {
    throw ApiError.forbidden('Listing another organization’s users requires the iam:users permission');
  }
  return principal.orgId;
}

@ApiTags('users')
@Controller('api/users')
export class UsersController {
  constructor(
    private readonly users: UsersService,
    private readonly admin: UserAdminService,
    private readonly audit: AuditService,
  ) {}

  @Get('me')
  @Endpoint({ summary: 'The current user', access: 'authenticated', errors: [404] })
  @ApiOkResponse({ type: UserProfileDto, description: 'The caller’s profile', headers: ETAG_HEADER })
  async getCurrentUser(
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UserProfileDto> {
    // A Zitadel service account calling with its own token has no local profile.
    if (!principal.userId) throw ApiError.userNotFound();
    const user = await this.users.requireReadById(principal.userId);
    void reply.header('ETag', versionEtag(user.version));
    return toUserProfileDto(user);
  }

  @Get()
  @UserListRateLimit()
  @Endpoint({
    summary: 'List and search users',
    description:
      'Filters combine. `limit` above 100 is refused (422), never clamped. Offset pagination, or keyset ' +
      'pagination with `cursor` = the previous page’s `next_cursor`. `total` is exact unless ' +
      '`total_exact` is false: a search counts its matches only up to a limit (1,000 by default).',
    access: { permission: 'admin:users' },
    errors: [422],
  })
  @ApiOkResponse({ type: UserListDto, description: 'One page of users' })
  // The answer is UserListDto already written as JSON (userListJson).
  @Header('Content-Type', 'application/json; charset=utf-8')
  async listUsers(@Query() query: ListUsersQuery, @CurrentPrincipal() principal: Principal): Promise<string> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const offset = query.offset ?? 0;
    if (query.cursor && offset) {
      throw ApiError.validation([{ field: 'offset', message: 'use either offset or cursor, not both' }]);
    }
    const page = await this.users.list({
      orgId: listedOrganization(principal, query.org_id),
      status: query.status,
      role: query.role,
      botId: query.bot_id,
      search: query.search,
      sort: query.sort ?? 'created_at',
      limit,
      offset,
      cursor: query.cursor,
    });
    return userListJson(page.usersJson, {
      total: page.total,
      total_exact: page.totalExact,
      limit,
      offset,
      next_cursor: page.nextCursor,
    });
  }

  @Post()
  @Endpoint({
    summary: 'Create a user (in Zitadel, then here)',
    description:
      'Without a password Zitadel emails the user an invitation; the user is `pending_verification`.',
    access: { permission: 'admin:users' },
    errors: [409, 422],
  })
  @ApiCreatedResponse({ type: UserDetailDto, description: 'Created' })
  async createUser(
    @Body() body: CreateUserDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentActor() actor: Actor,
  ): Promise<UserDetailDto> {
    return toUserDetailDto(await this.admin.create(body, callerOf(principal, actor)), {
      withAdminDetails: true,
    });
  }

  @Get(':id')
  @Endpoint({
    summary: 'A user',
    description: 'Administrators also see the status details and the Zitadel id.',
    access: { selfOr: 'admin:users' },
    errors: [404],
  })
  @ApiOkResponse({ type: UserDetailDto, description: 'The user', headers: ETAG_HEADER })
  async getUser(
    @Param('id', uuidParam('user id')) id: string,
    @CurrentPrincipal() principal: Principal,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<UserDetailDto> {
    const user = await this.users.requireReadById(id);
    void reply.header('ETag', versionEtag(user.version));
    return toUserDetailDto(user, { withAdminDetails: isAdmin(principal) });
  }

  @Put(':id')
  @UserUpdateRateLimit()
  @Endpoint({
    summary: 'Update a user',
    description:
      'The user may change their own `display_name` and `avatar_url`; `admin:users` may also change ' +
      '`status` (active | suspended) and `roles`, and other users. A non-admin sending an admin field gets ' +
      '403 naming it, and nothing is written.',
    access: { selfOr: 'admin:users' },
    errors: [404, 409, 412, 422],
  })
  @IF_MATCH
  @ApiOkResponse({ type: UpdateUserResponseDto, description: 'Updated' })
  async updateUser(
    @Param('id', uuidParam('user id')) id: string,
    @Body() body: UpdateUserDto,
    @CurrentPrincipal() principal: Principal,
    @CurrentActor() actor: Actor,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<UpdateUserResponseDto> {
    const updated = await this.admin.update(id, body, callerOf(principal, actor), ifMatch);
    return { user_id: id, status: 'updated', updated_fields: updated };
  }

  @Post(':id/suspend')
  @HttpCode(200)
  @Endpoint({
    summary: 'Suspend a user',
    description:
      'Deactivates the user in Zitadel and ends all their sessions at once. With `until`, the user is ' +
      'reactivated automatically then. Suspending a suspended user, or yourself, is refused.',
    access: { permission: 'admin:users' },
    errors: [404, 409, 412, 422],
  })
  @IF_MATCH
  @ApiOkResponse({ type: UserSuspendedDto, description: 'Suspended' })
  async suspendUser(
    @Param('id', uuidParam('user id')) id: string,
    @Body() body: SuspendUserDto,
    @CurrentActor() actor: Actor,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<UserSuspendedDto> {
    const until = body.until === undefined ? undefined : new Date(body.until);
    const user = await this.admin.suspend(id, { reason: body.reason, until }, actor, ifMatch);
    return {
      user_id: user.id,
      status: 'suspended',
      suspended_at: user.suspendedAt!.toISOString(),
      suspended_until: user.suspendedUntil?.toISOString() ?? null,
    };
  }

  @Post(':id/activate')
  @HttpCode(200)
  @Endpoint({
    summary: 'Reactivate a suspended or deactivated user',
    access: { permission: 'admin:users' },
    errors: [404, 409, 412],
  })
  @IF_MATCH
  @ApiOkResponse({ type: UserActivatedDto, description: 'Active again' })
  async activateUser(
    @Param('id', uuidParam('user id')) id: string,
    @CurrentActor() actor: Actor,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<UserActivatedDto> {
    const user = await this.admin.activate(id, actor, ifMatch);
    return { user_id: user.id, status: 'active', activated_at: user.updatedAt.toISOString() };
  }

  @Delete(':id')
  @Endpoint({
    summary: 'Delete a user',
    description:
      'Deletes the user in Zitadel and ends their sessions. The row stays (status `deleted`) for the audit ' +
      'trail, but the user is gone from every read and list. Deleting yourself is refused.',
    access: { permission: 'admin:users' },
    errors: [404, 412],
  })
  @IF_MATCH
  @ApiOkResponse({ type: UserDeletedDto, description: 'Deleted' })
  async deleteUser(
    @Param('id', uuidParam('user id')) id: string,
    @CurrentActor() actor: Actor,
    @Headers('if-match') ifMatch: string | undefined,
  ): Promise<UserDeletedDto> {
    const user: User = await this.admin.delete(id, actor, ifMatch);
    return { user_id: user.id, status: 'deleted', deleted_at: user.deletedAt!.toISOString() };
  }

  @Get(':id/audit')
  @Endpoint({
    summary: 'The audit trail of changes to a user',
    description:
      'Newest first. Every change to profile, roles or status, and session terminations by others.',
    access: { permission: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: AuditEventListDto, description: 'One page of audit events' })
  async getUserAudit(
    @Param('id', uuidParam('user id')) id: string,
    @Query() query: PageQuery,
  ): Promise<AuditEventListDto> {
    // Deleted users keep their trail: an admin may need to know who deleted them.
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    const offset = query.offset ?? 0;
    const { events, total } = await this.audit.listForUser(id, { limit, offset });
    if (!total && !(await this.users.existsIncludingDeleted(id))) throw ApiError.userNotFound();
    return { events: events.map(toAuditEventDto), total, limit, offset };
  }
}
