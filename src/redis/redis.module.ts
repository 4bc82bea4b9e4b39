import { Global, Module } from '@nestjs/common';
import { RedisConnection } from './redis.connection.js';

/** Optional Redis (REDIS_URL): shared state between instances. Global, since several concerns may use it. */
@Global()
@Module({ providers: [RedisConnection], exports: [RedisConnection] })
export class RedisModule {}
