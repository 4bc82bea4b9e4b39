import { ApiProperty } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, Matches } from 'class-validator';
import { ApiError } from '../../common/errors/api-error.js';
import { BOT_ID_PATTERN } from '../../sessions/dto/bot-id.js';
import { ROLE_KEY } from '../dto/user-writes.dto.js';

/** `:bot_id` path parameters: a malformed bot id is a malformed request (400), like a malformed `:id`. */
export const botIdParam = {
  transform(value: unknown): string {
    if (typeof value !== 'string' || !BOT_ID_PATTERN.test(value)) {
      throw ApiError.invalidRequest(
        'Malformed bot id: expected 1-64 lower-case letters, digits, - or _, starting with a letter or digit',
      );
    }
    return value;
  },
};

/** `GET /api/users/:id/bots` lists at most this many bots. */
export const MAX_BOTS_LISTED = 1000;

export class SetBotRolesDto {
  @ApiProperty({
    type: [String],
    example: ['manager'],
    description:
      'The user’s roles in this bot, replacing any it had there (1-20 role keys: letters, digits, `_.:-`). ' +
      'Any key is accepted: bot roles are read by the bot’s scripts, they grant no API permission.',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(20)
  @ArrayUnique()
  @Matches(ROLE_KEY, { each: true, message: 'each role must be 1-64 letters, digits or _.:-' })
  roles!: string[];
}

export class BotRolesDto {
  @ApiProperty({ example: 'support-bot' })
  bot_id!: string;

  @ApiProperty({ type: [String], example: ['manager'], description: 'Sorted, never empty' })
  roles!: string[];

  @ApiProperty({ format: 'date-time' })
  updated_at!: string;
}

export class UserBotsDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({
    type: [BotRolesDto],
    maxItems: MAX_BOTS_LISTED,
    description: `The bots where the user holds roles, by bot id (the first ${MAX_BOTS_LISTED})`,
  })
  bots!: BotRolesDto[];
}

export class BotRolesSetDto extends BotRolesDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;
}

export class BotRolesRemovedDto {
  @ApiProperty({ format: 'uuid' })
  user_id!: string;

  @ApiProperty({ example: 'support-bot' })
  bot_id!: string;

  @ApiProperty({ enum: ['removed'] })
  status!: 'removed';
}
