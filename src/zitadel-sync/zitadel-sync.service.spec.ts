import { beforeAll, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { Registry } from 'prom-client';
import type { DataSource, EntityManager } from 'typeorm';
import { ApiError } from '../common/errors/api-error.js';
import type { MetricsService } from '../metrics/metrics.service.js';
import type { SessionsService } from '../sessions/sessions.service.js';
import type { User } from '../users/entities/user.entity.js';
import type { UsersService, ZitadelSnapshotResult } from '../users/users.service.js';
import type { ZitadelClient } from '../zitadel/zitadel.client.js';
import type { ZitadelUser } from '../zitadel/zitadel.types.js';
import { ZitadelSyncMetrics } from './zitadel-sync.metrics.js';
import { ZitadelSyncService } from './zitadel-sync.service.js';

/** The service's decisions (which events, whose user, when to ask Zitadel, when to end sessions), no database. */
describe('ZitadelSyncService', () => {
  const remoteUser: ZitadelUser = {
    userId: '42',
    orgId: '7',
    state: 'USER_STATE_INACTIVE',
    username: 'u',
    email: 'u@example.test',
    emailVerified: true,
    givenName: 'U',
    familyName: 'Ser',
    displayName: 'U Ser',
  };
  let storedSequence: string | undefined;
  let snapshot: ZitadelSnapshotResult;
  let zitadel: {
    getUser: jest.Mock<ZitadelClient['getUser']>;
    getUserRoles: jest.Mock<ZitadelClient['getUserRoles']>;
  };
  let users: { applyZitadelSnapshot: jest.Mock<UsersService['applyZitadelSnapshot']> };
  let sessions: { terminateAll: jest.Mock<SessionsService['terminateAll']> };
  let service: ZitadelSyncService;

  beforeAll(() => {
    Logger.overrideLogger(false);
  });

  /** The local row's version as successive reads see it (1 once exhausted). */
  let localVersions: number[];

  beforeEach(() => {
    storedSequence = undefined;
    localVersions = [];
    snapshot = { user: { id: 'local-1', status: 'inactive' } as User, before: 'active', changed: true };
    zitadel = {
      getUser: jest.fn<ZitadelClient['getUser']>().mockResolvedValue(remoteUser),
      getUserRoles: jest.fn<ZitadelClient['getUserRoles']>().mockResolvedValue(['admin']),
    };
    users = {
      applyZitadelSnapshot: jest.fn<UsersService['applyZitadelSnapshot']>(() => Promise.resolve(snapshot)),
    };
    sessions = { terminateAll: jest.fn<SessionsService['terminateAll']>().mockResolvedValue(2) };
    // The cursor table, in memory: the claim succeeds only for a higher sequence.
    const cursorTable = (sql: string, params: string[]) => {
      if (sql.startsWith('SELECT version')) return [{ version: localVersions.shift() ?? 1 }];
      if (sql.startsWith('SELECT')) return storedSequence === undefined ? [] : [{ sequence: storedSequence }];
      if (storedSequence !== undefined && BigInt(storedSequence) >= BigInt(params[2])) return [];
      storedSequence = params[2];
      return [{ sequence: params[2] }];
    };
    const query = (sql: string, params: string[]) => Promise.resolve(cursorTable(sql, params));
    const manager = { query } as unknown as EntityManager;
    const dataSource = {
      query,
      transaction: (run: (m: EntityManager) => Promise<unknown>) => run(manager),
    } as unknown as DataSource;
    service = new ZitadelSyncService(
      zitadel as unknown as ZitadelClient,
      users as unknown as UsersService,
      sessions as unknown as SessionsService,
      dataSource,
      new ZitadelSyncMetrics({ registry: new Registry() } as MetricsService),
    );
  });

  const event = (overrides: Record<string, unknown> = {}) => ({
    aggregateID: '42',
    aggregateType: 'user',
    sequence: 7,
    event_type: 'user.deactivated',
    event_payload: {},
    ...overrides,
  });

  it('re-reads the user and roles from Zitadel and ends the sessions of a blocked user', async () => {
    await expect(service.handleEvent(event())).resolves.toBe('applied');
    expect(zitadel.getUser).toHaveBeenCalledWith('42');
    expect(users.applyZitadelSnapshot).toHaveBeenCalledWith('42', remoteUser, ['admin'], expect.anything());
    expect(sessions.terminateAll).toHaveBeenCalledWith('local-1', expect.anything());
    expect(storedSequence).toBe('7');
  });

  it('reads Zitadel again when the local user changed between its read and the apply', async () => {
    // Seen before the first read: 1; under the apply's lock: 2 (an admin's write landed in between);
    // then 2 and 2: the second snapshot is applied.
    localVersions = [1, 2, 2, 2];
    await expect(service.handleEvent(event())).resolves.toBe('applied');
    expect(zitadel.getUser).toHaveBeenCalledTimes(2);
    expect(users.applyZitadelSnapshot).toHaveBeenCalledTimes(1);
    expect(storedSequence).toBe('7');
  });

  it('leaves the sessions of a user who stays active alone', async () => {
    snapshot = { user: { id: 'local-1', status: 'active' } as User, before: 'active', changed: true };
    await service.handleEvent(event({ event_type: 'user.reactivated' }));
    expect(sessions.terminateAll).not.toHaveBeenCalled();
  });

  it('treats a removal as final without asking Zitadel', async () => {
    await service.handleEvent(event({ event_type: 'user.removed' }));
    expect(zitadel.getUser).not.toHaveBeenCalled();
    expect(users.applyZitadelSnapshot).toHaveBeenCalledWith('42', null, [], expect.anything());
  });

  it('does no work at all for a replayed or older event', async () => {
    storedSequence = '7';
    await expect(service.handleEvent(event({ sequence: 7 }))).resolves.toBe('stale');
    await expect(service.handleEvent(event({ sequence: '3' }))).resolves.toBe('stale');
    expect(zitadel.getUser).not.toHaveBeenCalled();
    expect(users.applyZitadelSnapshot).not.toHaveBeenCalled();
  });

  it('loses the claim to a newer event applied meanwhile: stale, nothing applied', async () => {
    zitadel.getUser.mockImplementation(() => {
      storedSequence = '9'; // another delivery committed while we were asking Zitadel
      return Promise.resolve(remoteUser);
    });
    await expect(service.handleEvent(event({ sequence: 8 }))).resolves.toBe('stale');
    expect(users.applyZitadelSnapshot).not.toHaveBeenCalled();
    expect(storedSequence).toBe('9');
  });

  it('maps grant events to the grantee named in the payload', async () => {
    await service.handleEvent(
      event({
        aggregateType: 'usergrant',
        aggregateID: 'g1',
        event_type: 'user.grant.changed',
        event_payload: { userId: '42' },
      }),
    );
    expect(zitadel.getUser).toHaveBeenCalledWith('42');
  });

  it('ignores unknown event types, other aggregates and grant events without a grantee', async () => {
    for (const body of [
      event({ event_type: 'user.human.phone.changed' }),
      event({ aggregateType: 'org', event_type: 'user.deactivated' }),
      event({ aggregateType: 'usergrant', event_type: 'user.grant.added', event_payload: {} }),
      event({ aggregateType: 'usergrant', event_type: 'user.grant.added', event_payload: { userId: 'a b' } }),
    ]) {
      await expect(service.handleEvent(body)).resolves.toBe('ignored');
    }
    expect(zitadel.getUser).not.toHaveBeenCalled();
  });

  it('refuses bodies that are not events with invalid_request', async () => {
    for (const body of [null, [], 'text', {}, event({ sequence: -1 }), event({ aggregateID: '' })]) {
      await expect(service.handleEvent(body)).rejects.toBeInstanceOf(ApiError);
    }
  });
});
