import { Body, Controller, Get, Param, Put } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { WritesNoCachedRows } from '../change-feed/writes-no-cached-rows.decorator.js';
import { uuidParam } from '../common/http/params.js';
import { UserUpdateRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { UsersService } from '../users/users.service.js';
import {
  SettingsDto,
  SettingsUpdatedDto,
  toChangedSettingsDto,
  toSettingsDto,
  UpdateSettingsDto,
} from './dto/settings.dto.js';
import { SettingsService } from './settings.service.js';

@ApiTags('settings')
@Controller('api/users/:id/settings')
export class SettingsController {
  constructor(
    private readonly settings: SettingsService,
    private readonly users: UsersService,
  ) {}

  @Get()
  @Endpoint({
    summary: "Get a user's preferences",
    description: 'Every preference, with the default for those the user never set.',
    access: { selfOr: 'admin:users' },
    errors: [404],
  })
  @ApiOkResponse({ type: SettingsDto, description: 'The preferences' })
  async getSettings(@Param('id', uuidParam('user id')) id: string): Promise<SettingsDto> {
    await this.users.requireById(id);
    return toSettingsDto(await this.settings.get(id));
  }

  @Put()
  @UserUpdateRateLimit()
  // Writes user_settings only; the caches hold users and sessions.
  @WritesNoCachedRows()
  @Endpoint({
    summary: "Update a user's preferences",
    description:
      'Merges the given keys (and the given keys of `notifications`) into the stored preferences; `null` ' +
      'resets a key to its default, keys left out are unchanged, unknown keys are refused (422). All or ' +
      'nothing: one invalid field and nothing is written. `settings` in the reply holds the preferences ' +
      'whose value changed, with their new values (`{}` for an empty body or when nothing changed).',
    access: { selfOr: 'admin:users' },
    errors: [404, 422],
  })
  @ApiOkResponse({ type: SettingsUpdatedDto, description: 'Updated' })
  async updateSettings(
    @Param('id', uuidParam('user id')) id: string,
    @Body() body: UpdateSettingsDto,
  ): Promise<SettingsUpdatedDto> {
    return { status: 'updated', settings: toChangedSettingsDto(await this.settings.update(id, body)) };
  }
}
