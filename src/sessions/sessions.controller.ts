import { Controller, Delete, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, type Actor } from '../common/actor.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { uuidParam } from '../common/http/params.js';
import { UsersService } from '../users/users.service.js';
import {
  AllSessionsTerminatedDto,
  SessionListDto,
  SessionsQuery,
  SessionTerminatedDto,
  toSessionDto,
} from './dto/session.dto.js';
import { SessionsService } from './sessions.service.js';

@ApiTags('sessions')
@Controller('api/users/:id/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly users: UsersService,
  ) {}

  @Get()
  @Endpoint({
    summary: "List a user's active sessions",
    description: 'With `?bot_id=`, only the sessions opened for that bot (`bot_id` of the login).',
    access: { selfOr: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: SessionListDto, description: 'Active sessions, newest first' })
  async listSessions(
    @Param('id', uuidParam('user id')) id: string,
    @Query() query: SessionsQuery,
  ): Promise<SessionListDto> {
    await this.users.requireById(id);
    return { sessions: (await this.sessions.listActive(id, query.bot_id)).map(toSessionDto) };
  }

  @Delete(':session_id')
  @Endpoint({
    summary: 'Terminate one session',
    description: 'Its token stops working on the next request. Terminating an ended session succeeds again.',
    access: { selfOr: 'admin:users' },
    errors: [404],
  })
  @ApiOkResponse({ type: SessionTerminatedDto, description: 'Terminated' })
  async terminateSession(
    @Param('id', uuidParam('user id')) id: string,
    @Param('session_id', uuidParam('session id')) sessionId: string,
    @CurrentActor() actor: Actor,
  ): Promise<SessionTerminatedDto> {
    await this.users.requireById(id);
    const session = await this.sessions.terminateAs(actor, id, sessionId);
    return { session_id: session.id, status: 'terminated' };
  }

  @Delete()
  @Endpoint({
    summary: 'Terminate all sessions of a user (log out everywhere)',
    description:
      'With `?bot_id=`, only the sessions opened for that bot end; the user’s other sessions stay. ' +
      '`terminated_count` counts the sessions that were active.',
    access: { selfOr: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: AllSessionsTerminatedDto, description: 'All (or that bot’s) sessions terminated' })
  async terminateAllSessions(
    @Param('id', uuidParam('user id')) id: string,
    @Query() query: SessionsQuery,
    @CurrentActor() actor: Actor,
  ): Promise<AllSessionsTerminatedDto> {
    await this.users.requireById(id);
    const count = await this.sessions.terminateAs(actor, id, undefined, query.bot_id);
    return { terminated_count: count, status: 'all_sessions_terminated' };
  }
}
