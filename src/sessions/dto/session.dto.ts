import { ApiProperty } from '@nestjs/swagger';
import type { Session } from '../entities/session.entity.js';
import { OptionalBotId } from './bot-id.js';

/** `?bot_id=`: only the sessions a bot opened. */
export class SessionsQuery {
  @OptionalBotId('Only the sessions of this bot.')
  bot_id?: string;
}

export class SessionDto {
  @ApiProperty({ format: 'uuid' })
  session_id!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    example: 'support-bot',
    description: 'The bot the session was opened for (`bot_id` of the login); null for other logins',
  })
  bot_id!: string | null;

  @ApiProperty({ format: 'date-time' })
  started_at!: string;

  @ApiProperty({ format: 'date-time', description: 'Updated at most once a minute' })
  last_activity!: string;

  @ApiProperty({ type: String, nullable: true, example: 'Chrome on Windows' })
  device!: string | null;

  @ApiProperty({ type: String, nullable: true, example: '203.0.113.7' })
  ip!: string | null;

  @ApiProperty({ format: 'date-time' })
  expires_at!: string;
}

export class SessionListDto {
  @ApiProperty({ type: [SessionDto] })
  sessions!: SessionDto[];
}

export class SessionTerminatedDto {
  @ApiProperty({ format: 'uuid' })
  session_id!: string;

  @ApiProperty({ enum: ['terminated'] })
  status!: 'terminated';
}

export class AllSessionsTerminatedDto {
  @ApiProperty({ example: 3 })
  terminated_count!: number;

  @ApiProperty({ enum: ['all_sessions_terminated'] })
  status!: 'all_sessions_terminated';
}

export function toSessionDto(session: Session): SessionDto {
  return {
    session_id: session.id,
    bot_id: session.botId,
    started_at: session.createdAt.toISOString(),
    last_activity: session.lastActivity.toISOString(),
    device: session.deviceInfo,
    ip: session.ipAddress,
    expires_at: session.expiresAt.toISOString(),
  };
}
