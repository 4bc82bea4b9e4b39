import { Module, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { FastifyInstance } from 'fastify';
import { UsersModule } from '../users.module.js';
import { AvatarsController } from './avatars.controller.js';
import { AvatarsService } from './avatars.service.js';
import { UserAvatar } from './entities/user-avatar.entity.js';
import { registerImageBodyParser } from './image-body.js';

/**
 * Avatars: a module of its own beside the users module (which it uses through UsersService), so the
 * users controller and service stay untouched but for setAvatarUrl.
 */
@Module({
  imports: [TypeOrmModule.forFeature([UserAvatar]), UsersModule],
  controllers: [AvatarsController],
  providers: [AvatarsService],
})
export class AvatarsModule implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    // Runs during app.init(), before Fastify is ready: the last moment content type parsers can be added.
    registerImageBodyParser(this.adapterHost.httpAdapter.getInstance<FastifyInstance>());
  }
}
