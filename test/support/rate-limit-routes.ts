import { Controller, Get, Module, Param, Put } from '@nestjs/common';
import { Endpoint } from '../../src/common/openapi/api-docs.decorators.js';
import { UserListRateLimit, UserUpdateRateLimit } from '../../src/common/rate-limit/rate-limit.policies.js';

/**
 * Stand-ins for routes other issues are writing (`GET /api/users`, `PUT /api/users/:id`,
 * `PUT /api/users/:id/settings`), declared exactly as those routes should be, so the policies are
 * tested before the real handlers exist.
 */
@Controller('rate-limit-test')
class RateLimitTestController {
  @Get('users')
  @UserListRateLimit()
  @Endpoint({ summary: 'List users (stand-in)', access: 'authenticated' })
  list() {
    return { users: [] };
  }

  @Put('users/:id')
  @UserUpdateRateLimit()
  @Endpoint({ summary: 'Update a user (stand-in)', access: { selfOr: 'admin:users' } })
  update(@Param('id') id: string) {
    return { id };
  }

  @Put('users/:id/settings')
  @UserUpdateRateLimit()
  @Endpoint({ summary: 'Update settings (stand-in)', access: { selfOr: 'admin:users' } })
  updateSettings(@Param('id') id: string) {
    return { id };
  }

  @Get('authenticated')
  @Endpoint({ summary: 'Any other authenticated route', access: 'authenticated' })
  authenticated() {
    return { ok: true };
  }

  @Get('public')
  @Endpoint({ summary: 'Any other public route', access: 'public' })
  anonymous() {
    return { ok: true };
  }
}

@Module({ controllers: [RateLimitTestController] })
export class RateLimitTestModule {}
