import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createHash } from 'node:crypto';
import { Repository } from 'typeorm';
import { uploadedAvatarUrl, UsersService } from '../users.service.js';
import { UserAvatar } from './entities/user-avatar.entity.js';
import type { AvatarContentType } from './image-format.js';

/** What a conditional GET needs, without the bytes. */
export type AvatarMeta = Pick<UserAvatar, 'userId' | 'contentType' | 'sha256' | 'updatedAt'>;

@Injectable()
export class AvatarsService {
  constructor(
    @InjectRepository(UserAvatar) private readonly avatars: Repository<UserAvatar>,
    private readonly users: UsersService,
  ) {}

  /** The avatar's metadata only: a revalidation answered with 304 never reads the bytes. */
  findMeta(userId: string): Promise<AvatarMeta | null> {
    return this.avatars.findOne({
      where: { userId },
      select: { userId: true, contentType: true, sha256: true, updatedAt: true },
    });
  }

  find(userId: string): Promise<UserAvatar | null> {
    return this.avatars.findOneBy({ userId });
  }

  /**
   * Stores (or replaces) the avatar and points the profile's avatar_url at it, in one transaction, so a
   * profile never names an upload that is not there. Returns the new avatar_url.
   */
  async save(userId: string, contentType: AvatarContentType, bytes: Buffer): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const url = uploadedAvatarUrl(userId);
    await this.avatars.manager.transaction(async (manager) => {
      await manager.query(
        `INSERT INTO user_avatars (user_id, content_type, bytes, sha256) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id) DO UPDATE
         SET content_type = EXCLUDED.content_type, bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256, updated_at = now()`,
        [userId, contentType, bytes, sha256],
      );
      await this.users.setAvatarUrl(userId, url, manager);
    });
    return url;
  }
}
