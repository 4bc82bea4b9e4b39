import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { ApiError } from '../common/errors/api-error.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { toUserProfileDto, UserProfileDto } from './dto/user-profile.dto.js';
import { UsersService } from './users.service.js';

@ApiTags('users')
@Controller('api/users')
export class UsersController {
  constructor(private readonly users: UsersService) {}

  @Get('me')
  @Endpoint({ summary: 'The current user', access: 'authenticated', errors: [404] })
  @ApiOkResponse({ type: UserProfileDto, description: 'The caller’s profile' })
  async getCurrentUser(@CurrentPrincipal() principal: Principal): Promise<UserProfileDto> {
    // A Zitadel service account calling with its own token has no local profile.
    if (!principal.userId) throw ApiError.userNotFound();
    return toUserProfileDto(await this.users.requireById(principal.userId));
  }
}
