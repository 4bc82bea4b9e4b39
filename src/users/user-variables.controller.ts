import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { ApiError } from '../common/errors/api-error.js';
import { uuidParam } from '../common/http/params.js';
import { OptionalBotId } from '../sessions/dto/bot-id.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { UserVariablesDto } from './dto/user-variables.dto.js';
import { UserVariablesService } from './user-variables.service.js';

const DESCRIPTION =
  'The variables of the bot platform’s BASIC runtime, with the contract’s names: `user_name` (display ' +
  'name, else username), `user_email`, `role` (the highest of `roles`: admin > manager > user), and the ' +
  '`language` and `timezone` preferences (their defaults when never set). In a bot (a session opened ' +
  'with `bot_id`, or `?bot_id=`), `role` and `roles` are the user’s roles in that bot where set ' +
  '(`PUT /api/users/:id/bots/:bot_id/roles`), else the organization roles. One indexed read; the ' +
  'identity provider is not asked.';

class VariablesQuery {
  @OptionalBotId('Resolve `role` and `roles` as in this bot.')
  bot_id?: string;
}

/** `GET user_name`, `GET user_email`, `GET role` in a bot script (the contract's "BASIC Integration"). */
@ApiTags('users')
@Controller('api/users')
export class UserVariablesController {
  constructor(private readonly variables: UserVariablesService) {}

  @Get('me/variables')
  @Endpoint({
    summary: 'The caller’s BASIC variables',
    description: DESCRIPTION,
    access: 'authenticated',
    errors: [404],
  })
  @ApiOkResponse({ type: UserVariablesDto, description: 'The variables' })
  getMyVariables(@CurrentPrincipal() principal: Principal): Promise<UserVariablesDto> {
    // A Zitadel service account calling with its own token has no local profile.
    if (!principal.userId) throw ApiError.userNotFound();
    return this.variables.forUser(principal.userId, principal.botId);
  }

  @Get(':id/variables')
  @Endpoint({
    summary: 'A user’s BASIC variables',
    description: DESCRIPTION,
    access: { selfOr: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: UserVariablesDto, description: 'The variables' })
  getUserVariables(
    @Param('id', uuidParam('user id')) id: string,
    @Query() query: VariablesQuery,
  ): Promise<UserVariablesDto> {
    return this.variables.forUser(id, query.bot_id ?? null);
  }
}
