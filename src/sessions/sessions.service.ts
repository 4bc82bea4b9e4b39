import { Injectable, Logger } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, EntityManager, Repository } from 'typeorm';
import { AuditService } from '../audit/audit.service.js';
import type { Actor } from '../common/actor.js';
import { ApiError } from '../common/errors/api-error.js';
import { Session, type AuthMethod } from './entities/session.entity.js';
import { ChangeFeedService } from '../change-feed/change-feed.service.js';
import { CoherentCache } from '../change-feed/coherent-cache.js';
import type { AppConfig } from '../config/app-config.js';

/** What the token check needs about a session and its user, read in one indexed query. */
export interface ActiveSession {
  sessionId: string;
  userId: string;
  zitadelId: string;
  roles: string[];
  /** The user's organization. */
  orgId: string;
  /** The bot the session was opened for, if any. */
  botId: string | null;
}

interface AuthenticateRow {
  session_id: string;
  expires_at: Date;
  last_activity: Date;
  user_id: string;
  zitadel_id: string;
  roles: string[];
  org_id: string;
  bot_id: string | null;
}

/** A live session as cached between token checks (see SessionsService.authenticate). */
interface CachedSession extends ActiveSession {
  expiresAt: number;
  lastActivity: number;
}

/**
 * The token check runs on every authenticated request, so its SQL is written once here rather than built
 * by a query builder per call. The primary key finds the session; the join reads its user by primary key.
 */
const AUTHENTICATE_SQL = `
  SELECT s.id AS session_id, s.expires_at, s.last_activity, s.bot_id, u.id AS user_id, u.zitadel_id,
         u.roles, u.org_id
  FROM sessions s INNER JOIN users u ON u.id = s.user_id
  WHERE s.id = $1 AND s.user_id = $2 AND s.status = 'active' AND s.expires_at > now() AND u.status = 'active'`;

/** last_activity is a hint for humans, not an audit log: write it at most this often per session. */
const ACTIVITY_WRITE_INTERVAL_MS = 60_000;

@Injectable()
export class SessionsService {
  private readonly logger = new Logger(SessionsService.name);
  /**
   * Live sessions by id, so that a token check needs no database round trip. Kept coherent by the change
   * feed: a notice about the session (ended, expiry changed, deleted) or its user (any change, status and
   * roles included) drops the entry before the next check on any instance; see change-feed/.
   */
  private readonly live: CoherentCache<CachedSession>;

  constructor(
    @InjectRepository(Session) private readonly sessions: Repository<Session>,
    private readonly dataSource: DataSource,
    private readonly audit: AuditService,
    feed: ChangeFeedService,
    config: ConfigService<AppConfig, true>,
  ) {
    const { maxEntries, maxAgeMs } = config.get('database', { infer: true }).cache;
    this.live = new CoherentCache<CachedSession>(feed, {
      maxEntries,
      maxAgeMs,
      staleAfter: (table, ids) => {
        if (table === 'sessions') return { keys: ids };
        const users = new Set(ids);
        return { where: (session) => users.has(session.userId) };
      },
    });
  }

  async create(input: {
    userId: string;
    expiresAt: Date;
    authMethod: AuthMethod;
    deviceInfo: string | null;
    ipAddress: string | null;
    botId?: string | null;
    idToken?: string | null;
  }): Promise<Session> {
    return this.sessions.save(
      this.sessions.create({
        userId: input.userId,
        expiresAt: input.expiresAt,
        authMethod: input.authMethod,
        deviceInfo: input.deviceInfo,
        ipAddress: input.ipAddress,
        botId: input.botId ?? null,
        idToken: input.idToken ?? null,
      }),
    );
  }

  /**
   * The heart of revocation: a token is honoured only while its session is active and unexpired and its
   * user is active. One primary-key lookup joined to the user; no cache, so logout, termination,
   * suspension and deletion take effect on the very next request.
   */
  async authenticate(sessionId: string, userId: string): Promise<ActiveSession | null> {
    const session = await this.live.load(sessionId, async () => {
      const [row] = await this.sessions.query<AuthenticateRow[]>(AUTHENTICATE_SQL, [sessionId, userId]);
      return row
        ? {
            sessionId: row.session_id,
            userId: row.user_id,
            zitadelId: row.zitadel_id,
            roles: row.roles,
            orgId: row.org_id,
            botId: row.bot_id,
            expiresAt: row.expires_at.getTime(),
            lastActivity: row.last_activity.getTime(),
          }
        : null;
    });
    // The query pins the owner and the expiry; a cached entry is checked against both again.
    const now = Date.now();
    if (!session || session.userId !== userId || session.expiresAt <= now) return null;
    if (now - session.lastActivity > ACTIVITY_WRITE_INTERVAL_MS) {
      session.lastActivity = now;
      this.touch(sessionId);
    }
    return {
      sessionId: session.sessionId,
      userId: session.userId,
      zitadelId: session.zitadelId,
      roles: session.roles,
      orgId: session.orgId,
      botId: session.botId,
    };
  }

  /** Active, unexpired sessions of a user, newest first; with `botId`, only that bot's. */
  listActive(userId: string, botId?: string): Promise<Session[]> {
    const query = this.sessions
      .createQueryBuilder('s')
      .where('s.user_id = :userId', { userId })
      .andWhere(`s.status = 'active'`)
      .andWhere('s.expires_at > now()');
    if (botId !== undefined) query.andWhere('s.bot_id = :botId', { botId });
    return query.orderBy('s.created_at', 'DESC').addOrderBy('s.id', 'DESC').getMany();
  }

  /**
   * Ends one or all sessions on a caller's request. When the caller is not the user (an admin), the
   * audit record commits in the same transaction.
   */
  async terminateAs(actor: Actor, userId: string, sessionId: string): Promise<Session>;
  async terminateAs(actor: Actor, userId: string, sessionId: undefined, botId?: string): Promise<number>;
  async terminateAs(
    actor: Actor,
    userId: string,
    sessionId?: string,
    botId?: string,
  ): Promise<Session | number> {
    if (actor.userId === userId) {
      return sessionId ? this.terminate(userId, sessionId) : this.terminateAll(userId, undefined, botId);
    }
    return this.dataSource.transaction(async (manager) => {
      if (sessionId) {
        const session = await this.terminate(userId, sessionId, manager);
        await this.audit.record(manager, {
          actor,
          targetUserId: userId,
          action: 'session.terminated',
          changes: { session_id: { before: sessionId, after: null } },
        });
        return session;
      }
      const count = await this.terminateAll(userId, manager, botId);
      await this.audit.record(manager, {
        actor,
        targetUserId: userId,
        action: 'sessions.terminated_all',
        changes: {
          terminated_count: { before: null, after: count },
          ...(botId === undefined ? {} : { bot_id: { before: botId, after: null } }),
        },
      });
      return count;
    });
  }

  /** Ends one session of the user. Ending an already ended session is a no-op (idempotent). */
  async terminate(userId: string, sessionId: string, manager?: EntityManager): Promise<Session> {
    const repository = manager ? manager.getRepository(Session) : this.sessions;
    const result = await repository
      .createQueryBuilder()
      .update(Session)
      .set({ status: 'terminated', terminatedAt: () => 'now()' })
      .where('id = :sessionId AND user_id = :userId', { sessionId, userId })
      .andWhere(`status = 'active'`)
      .execute();
    const session = await repository.findOneBy({ id: sessionId, userId });
    if (!session) throw new ApiError('not_found', 'Session not found');
    if (!result.affected) this.logger.debug(`Session ${sessionId} was already ${session.status}`);
    return session;
  }

  /**
   * Ends every active session of the user (with `botId`, only that bot's); returns how many were active.
   * Pass the transaction's manager when the sessions must end together with another change (a suspension,
   * a deletion).
   */
  async terminateAll(userId: string, manager?: EntityManager, botId?: string): Promise<number> {
    const repository = manager ? manager.getRepository(Session) : this.sessions;
    const query = repository
      .createQueryBuilder()
      .update(Session)
      .set({ status: 'terminated', terminatedAt: () => 'now()' })
      .where('user_id = :userId', { userId })
      .andWhere(`status = 'active'`);
    if (botId !== undefined) query.andWhere('bot_id = :botId', { botId });
    const result = await query.execute();
    return result.affected ?? 0;
  }

  private touch(sessionId: string): void {
    // Off the request path; the condition keeps concurrent requests from all writing.
    this.sessions
      .createQueryBuilder()
      .update(Session)
      .set({ lastActivity: () => 'now()' })
      .where('id = :sessionId', { sessionId })
      .andWhere('last_activity < now() - make_interval(secs => :seconds)', {
        seconds: ACTIVITY_WRITE_INTERVAL_MS / 1000,
      })
      .execute()
      .catch((error: unknown) => this.logger.warn({ err: error }, 'Could not record session activity'));
  }
}
