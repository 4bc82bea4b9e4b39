import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AVATAR_CONTENT_TYPES } from './image-format.js';

/** The largest avatar accepted; a larger body is refused with 413 before it is read in full. */
export const AVATAR_MAX_BYTES = 1_048_576;

/**
 * Lets Fastify accept raw image bodies: the declared image types are read into a Buffer, up to
 * AVATAR_MAX_BYTES (its own limit, whatever BODY_LIMIT_BYTES says for JSON). Whether the bytes really are
 * such an image is for the route to decide. Any other type stays unparsed and answers 415 as before.
 */
export function registerImageBodyParser(fastify: FastifyInstance): void {
  for (const type of AVATAR_CONTENT_TYPES) {
    if (fastify.hasContentTypeParser(type)) continue;
    fastify.addContentTypeParser(
      type,
      { parseAs: 'buffer', bodyLimit: AVATAR_MAX_BYTES },
      (_req, body, done) => done(null, body),
    );
  }
}

/**
 * The raw request body when it was parsed as bytes (an image content type), else undefined. A custom
 * decorator rather than @Body(), which the global ValidationPipe would try to validate as a DTO.
 */
export const ImageBody = createParamDecorator(
  (_data: unknown, context: ExecutionContext): Buffer | undefined => {
    const body = context.switchToHttp().getRequest<FastifyRequest>().body;
    return Buffer.isBuffer(body) ? body : undefined;
  },
);
