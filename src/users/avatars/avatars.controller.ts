import { Controller, Get, Headers, Param, Put, Res } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiOkResponse, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { createHash } from 'node:crypto';
import { ApiError } from '../../common/errors/api-error.js';
import { uuidParam } from '../../common/http/params.js';
import { Endpoint } from '../../common/openapi/api-docs.decorators.js';
import { UsersService } from '../users.service.js';
import { AvatarsService } from './avatars.service.js';
import { AvatarUpdatedDto } from './dto/avatar.dto.js';
import { GENERATED_AVATAR_CSP, generatedAvatarSvg } from './generated-avatar.js';
import { AVATAR_MAX_BYTES, ImageBody } from './image-body.js';
import { AVATAR_CONTENT_TYPES, detectImageType } from './image-format.js';

/**
 * The avatar URL never changes when the picture does, so caches must revalidate: a short max-age keeps a
 * chat with many avatars from asking again on every render, the ETag makes asking cheap (304). `private`:
 * the route needs a token, so shared caches must not keep it.
 */
const CACHE_CONTROL = 'private, max-age=300';

const binary = { schema: { type: 'string', format: 'binary' } };
const IMAGE_CONTENT = Object.fromEntries(
  [...AVATAR_CONTENT_TYPES, 'image/svg+xml'].map((type) => [type, binary]),
);

@ApiTags('users')
@Controller('api/users/:id/avatar')
export class AvatarsController {
  constructor(
    private readonly avatars: AvatarsService,
    private readonly users: UsersService,
  ) {}

  @Get()
  @Endpoint({
    summary: "A user's avatar",
    description:
      'The uploaded image, else a generated one (the initials on a colour derived from the user id, as ' +
      'SVG). Always with `ETag` and `Cache-Control`; `If-None-Match` answers 304. Never a redirect: an ' +
      'external picture is the profile’s `avatar_url` itself. Any authenticated user may fetch it: ' +
      'avatars are shown to the other participants of a chat.',
    access: 'authenticated',
    errors: [404],
  })
  @ApiProduces(...AVATAR_CONTENT_TYPES, 'image/svg+xml')
  @ApiResponse({
    status: 200,
    description: 'The uploaded image in the format detected at upload, or the generated SVG',
    content: IMAGE_CONTENT,
    headers: {
      ETag: { description: 'Quoted hash of the bytes', schema: { type: 'string' } },
      'Cache-Control': { schema: { type: 'string', example: CACHE_CONTROL } },
    },
  })
  @ApiResponse({ status: 304, description: 'Not modified (`If-None-Match` matched the ETag)' })
  async getAvatar(
    @Param('id', uuidParam('user id')) id: string,
    @Headers('if-none-match') ifNoneMatch: string | undefined,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const user = await this.users.requireById(id);
    const meta = await this.avatars.findMeta(id);
    if (meta) {
      const etag = `"${meta.sha256}"`;
      void reply.header('ETag', etag).header('Cache-Control', CACHE_CONTROL);
      if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) {
        await reply.status(304).send();
        return;
      }
      const avatar = await this.avatars.find(id);
      if (avatar) {
        await reply
          .status(200)
          .header('ETag', `"${avatar.sha256}"`)
          .header('Last-Modified', avatar.updatedAt.toUTCString())
          .header('Content-Type', avatar.contentType)
          .send(avatar.bytes);
        return;
      }
    }
    // No upload: the generated image. It changes only with the name, so the ETag follows the bytes.
    const svg = generatedAvatarSvg(user.id, user.displayName || user.username);
    const etag = `"g-${createHash('sha256').update(svg).digest('hex').slice(0, 40)}"`;
    void reply
      .header('ETag', etag)
      .header('Cache-Control', CACHE_CONTROL)
      // An SVG is a document: nothing in it may run a script or fetch anything, even opened on its own.
      .header('Content-Security-Policy', GENERATED_AVATAR_CSP);
    if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, etag)) {
      await reply.status(304).send();
      return;
    }
    await reply.status(200).header('Content-Type', 'image/svg+xml; charset=utf-8').send(svg);
  }

  @Put()
  @Endpoint({
    summary: "Upload a user's avatar",
    description:
      `The raw image bytes as the body (PNG, JPEG or WebP, at most ${AVATAR_MAX_BYTES} bytes). The format ` +
      'is judged by the content, not the declared type: bytes that are none of the three answer 415 ' +
      '`unsupported_media_type`, and a JPEG sent as image/png is stored and served as image/jpeg. The ' +
      "user's `avatar_url` becomes this service's avatar URL.",
    access: { selfOr: 'admin:users' },
    errors: [404, 413, 415],
  })
  @ApiConsumes(...AVATAR_CONTENT_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiOkResponse({ type: AvatarUpdatedDto, description: 'Stored' })
  async updateAvatar(
    @Param('id', uuidParam('user id')) id: string,
    @ImageBody() bytes: Buffer | undefined,
  ): Promise<AvatarUpdatedDto> {
    await this.users.requireById(id);
    const contentType = bytes && detectImageType(bytes);
    if (!bytes || !contentType) {
      throw new ApiError(
        'unsupported_media_type',
        'The body must be a PNG, JPEG or WebP image sent as image/png, image/jpeg or image/webp',
      );
    }
    const avatarUrl = await this.avatars.save(id, contentType, bytes);
    return { user_id: id, status: 'updated', avatar_url: avatarUrl };
  }
}

/** If-None-Match uses the weak comparison (RFC 9110 §13.1.2): `W/` prefixes do not matter; `*` matches. */
export function etagMatches(header: string, etag: string): boolean {
  const bare = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => tag.trim() === '*' || bare(tag) === bare(etag));
}
