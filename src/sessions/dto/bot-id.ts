import { applyDecorators } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';

/**
 * A bot's identifier as bot servers send it: a slug such as `support-bot` (the contract's examples) or a
 * UUID, lower-case. 1-64 characters: a lower-case letter or digit, then letters, digits, `-` or `_`.
 */
export const BOT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** An optional `bot_id` field or query parameter, validated and documented the same way everywhere. */
export function OptionalBotId(description: string): PropertyDecorator {
  return applyDecorators(
    ApiPropertyOptional({
      description: `${description} A slug such as \`support-bot\` or a lower-case UUID: 1-64 characters, a lower-case letter or digit, then lower-case letters, digits, \`-\` or \`_\`.`,
      example: 'support-bot',
      pattern: BOT_ID_PATTERN.source,
      maxLength: 64,
    }),
    IsOptional(),
    IsString(),
    Matches(BOT_ID_PATTERN, {
      message: 'bot_id must be 1-64 lower-case letters, digits, - or _, starting with a letter or digit',
    }),
  );
}
