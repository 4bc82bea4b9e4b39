import { Body, Controller, Delete, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, type Actor } from '../../common/actor.js';
import { uuidParam } from '../../common/http/params.js';
import { Endpoint } from '../../common/openapi/api-docs.decorators.js';
import { UserUpdateRateLimit } from '../../common/rate-limit/rate-limit.policies.js';
import type { UserBotRole } from '../entities/user-bot-role.entity.js';
import { BotRolesService } from './bot-roles.service.js';
import {
  BotRolesDto,
  BotRolesRemovedDto,
  BotRolesSetDto,
  botIdParam,
  SetBotRolesDto,
  UserBotsDto,
} from './bot-roles.dto.js';

const toBotRolesDto = (row: UserBotRole): BotRolesDto => ({
  bot_id: row.botId,
  roles: row.roles,
  updated_at: row.updatedAt.toISOString(),
});

/** Roles per bot (issue 19): what a bot's scripts see as `role` for the user, where set. */
@ApiTags('users')
@Controller('api/users')
export class BotRolesController {
  constructor(private readonly botRoles: BotRolesService) {}

  @Get(':id/bots')
  @Endpoint({
    summary: 'The user’s roles per bot',
    description:
      'The bots in which the user holds roles of their own. In any other bot, the user’s organization ' +
      'roles apply.',
    access: { selfOr: 'admin:users' },
    errors: [404],
  })
  @ApiOkResponse({ type: UserBotsDto, description: 'The user’s bot roles' })
  async listBots(@Param('id', uuidParam('user id')) id: string): Promise<UserBotsDto> {
    const rows = await this.botRoles.list(id);
    return { user_id: id, bots: rows.map(toBotRolesDto) };
  }

  @Put(':id/bots/:bot_id/roles')
  @UserUpdateRateLimit()
  @Endpoint({
    summary: 'Set the user’s roles in a bot',
    description:
      'Replaces the user’s roles in this bot; sessions of that bot see them in `GET /api/users/me/variables` ' +
      'from their next request. Audited (`user.bot_roles_changed`). Bot roles grant no API permission.',
    access: { permission: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: BotRolesSetDto, description: 'The roles now held in the bot' })
  async setBotRoles(
    @Param('id', uuidParam('user id')) id: string,
    @Param('bot_id', botIdParam) botId: string,
    @Body() body: SetBotRolesDto,
    @CurrentActor() actor: Actor,
  ): Promise<BotRolesSetDto> {
    const row = await this.botRoles.set(id, botId, body.roles, actor);
    return { user_id: id, ...toBotRolesDto(row) };
  }

  @Delete(':id/bots/:bot_id/roles')
  @Endpoint({
    summary: 'Remove the user’s roles in a bot',
    description:
      'The user’s organization roles apply in this bot again. Audited (`user.bot_roles_changed`). 404 ' +
      '`not_found` when the user holds no roles in the bot.',
    access: { permission: 'admin:users' },
    errors: [404],
  })
  @ApiOkResponse({ type: BotRolesRemovedDto, description: 'Removed' })
  async removeBotRoles(
    @Param('id', uuidParam('user id')) id: string,
    @Param('bot_id', botIdParam) botId: string,
    @CurrentActor() actor: Actor,
  ): Promise<BotRolesRemovedDto> {
    await this.botRoles.remove(id, botId, actor);
    return { user_id: id, bot_id: botId, status: 'removed' };
  }
}
