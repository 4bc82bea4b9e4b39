import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type TestProvider,
  STRONG_PASSWORD,
  apiClient,
  createUser,
  startTestProvider,
} from './test-support.js';

const KEY = 'dev-idp-events-spec-signing-key';

interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
  body: Record<string, unknown>;
}

/**
 * A webhook receiver; `failFirst` answers 503 to that many deliveries first, to exercise the retries;
 * while `hold` is pending, every delivery waits for it before it is answered.
 */
class Receiver {
  received: Received[] = [];
  /** The aggregate of every delivery attempt, answered or not yet, in arrival order. */
  attempts: string[] = [];
  failFirst = 0;
  status = 204;
  hold: Promise<void> | null = null;
  url = '';
  private waiters: Array<() => void> = [];
  private readonly server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = JSON.parse(raw) as Record<string, unknown>;
      this.attempts.push(String(body.aggregateID));
      void Promise.resolve(this.hold).then(() => {
        // An attempt the sender gave up on while it was held is no delivery.
        if (res.destroyed) return;
        if (this.failFirst > 0) {
          this.failFirst--;
          res.writeHead(503).end();
          return;
        }
        this.received.push({ headers: req.headers, raw, body });
        res.writeHead(this.status).end();
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  });

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /**
   * The events for one aggregate, once at least `count` have arrived; waits longer than the provider's
   * whole delivery schedule (about 10.6 s with every attempt timing out), as a loaded machine may need.
   */
  async eventsOf(aggregateID: string, count: number, ms = 15_000): Promise<Received[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const mine = this.received.filter((r) => r.body.aggregateID === aggregateID);
      if (mine.length >= count || Date.now() > deadline) return mine;
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }
}

describe('dev-idp Actions v2 webhook events', () => {
  let t: TestProvider;
  let receiver: Receiver;
  let api: ReturnType<typeof apiClient>;

  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    t = await startTestProvider({ eventTarget: { url: receiver.url, signingKey: KEY } });
    api = apiClient(t.idp);
  });
  afterEach(() => {
    receiver.hold = null;
    receiver.failFirst = 0;
    receiver.status = 204;
  });
  afterAll(async () => {
    await t.idp.close();
    await receiver.close();
  });

  it('sends Zitadel-shaped bodies signed as ZITADEL-Signature t=…,v1=HMAC-SHA256("t.body")', async () => {
    const user = await createUser(t.idp);
    const [added] = await receiver.eventsOf(user.userId, 1);
    expect(added.body).toEqual({
      aggregateID: user.userId,
      aggregateType: 'user',
      resourceOwner: t.idp.orgId,
      instanceID: expect.any(String),
      version: 'v2',
      sequence: expect.any(Number),
      event_type: 'user.human.added',
      created_at: expect.any(String),
      userID: expect.any(String),
      event_payload: expect.objectContaining({ email: user.email }),
    });
    const signature = String(added.headers['zitadel-signature']);
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(signature);
    expect(match).not.toBeNull();
    expect(Math.abs(Number(match![1]) - Date.now() / 1000)).toBeLessThan(10);
    expect(match![2]).toBe(createHmac('sha256', KEY).update(`${match![1]}.${added.raw}`).digest('hex'));
  });

  it('emits one event per change, with rising sequences, for the user lifecycle and grants', async () => {
    const user = await createUser(t.idp);
    const { userId } = user;
    const steps: Array<Parameters<typeof api>> = [
      ['updateHumanUser', { userId, profile: { givenName: 'New', familyName: 'Name' } }],
      ['updateHumanUser', { userId, username: `${user.username}.x` }],
      ['deactivateUser', { userId }],
      ['reactivateUser', { userId }],
      ['lockUser', { userId }],
      ['unlockUser', { userId }],
      ['deleteUser', { userId }],
    ];
    for (const [method, body] of steps) expect((await api(method, body)).code).toBe(0);
    // Deliveries are independent requests and may overtake one another: order by sequence, as a receiver must.
    const events = (await receiver.eventsOf(user.userId, 8)).sort(
      (a, b) => (a.body.sequence as number) - (b.body.sequence as number),
    );
    expect(events.map((e) => e.body.event_type)).toEqual([
      'user.human.added',
      'user.human.profile.changed',
      'user.username.changed',
      'user.deactivated',
      'user.reactivated',
      'user.locked',
      'user.unlocked',
      'user.removed',
    ]);
    const sequences = events.map((e) => e.body.sequence as number);
    expect(new Set(sequences).size).toBe(sequences.length);
  });

  it('reports email verification and grant changes (the grantee in the payload)', async () => {
    const user = await createUser(t.idp);
    const resend = await api('resendEmailCode', { userId: user.userId, returnCode: {} });
    await api('verifyEmail', {
      userId: user.userId,
      verificationCode: String(resend.body.verificationCode),
    });
    const verified = await receiver.eventsOf(user.userId, 3);
    expect(verified.map((e) => e.body.event_type)).toContain('user.human.email.verified');

    const added = await api('createAuthorization', {
      userId: user.userId,
      projectId: t.idp.projectId,
      roleKeys: ['admin'],
    });
    const grantId = String(added.body.id);
    await api('updateAuthorization', { id: grantId, roleKeys: ['manager'] });
    await api('deleteAuthorization', { id: grantId });
    const grantEvents = (await receiver.eventsOf(grantId, 3)).sort(
      (a, b) => (a.body.sequence as number) - (b.body.sequence as number),
    );
    expect(grantEvents.map((e) => [e.body.aggregateType, e.body.event_type])).toEqual([
      ['usergrant', 'user.grant.added'],
      ['usergrant', 'user.grant.changed'],
      ['usergrant', 'user.grant.removed'],
    ]);
    expect(grantEvents[1].body.event_payload).toMatchObject({ userId: user.userId, roleKeys: ['manager'] });
  });

  it('reports a lockout by wrong passwords as user.locked', async () => {
    const user = await createUser(t.idp);
    for (let i = 0; i < 10; i++) {
      await api('createSession', {
        checks: { user: { userId: user.userId }, password: { password: `${STRONG_PASSWORD}-wrong` } },
      });
    }
    const events = await receiver.eventsOf(user.userId, 2);
    expect(events.map((e) => e.body.event_type).sort()).toEqual(['user.human.added', 'user.locked']);
  });

  it('retries a failing target, without delaying the API reply', async () => {
    // Nothing is answered until the API has replied: a reply that waited for the delivery would wait
    // until the provider gave up, and the event would never arrive. (A bound on the reply's duration
    // instead failed on a loaded machine, where one argon2 hash in createUser can take over a second.)
    let release!: () => void;
    receiver.hold = new Promise<void>((resolve) => (release = resolve));
    receiver.failFirst = 2;
    try {
      const user = await createUser(t.idp);
      // A reply that had waited through a failed attempt and its retry would find two or more here.
      expect(receiver.attempts.filter((id) => id === user.userId).length).toBeLessThanOrEqual(1);
      release();
      const events = await receiver.eventsOf(user.userId, 1);
      expect(events.map((e) => e.body.event_type)).toEqual(['user.human.added']);
      // Answered 503 twice, then delivered: at least three attempts for this user's event.
      expect(receiver.attempts.filter((id) => id === user.userId).length).toBeGreaterThanOrEqual(3);
    } finally {
      release();
    }
  });

  it('answers the API normally when the target is unreachable, and sends nothing without a target', async () => {
    t.idp.setEventTarget({ url: 'http://127.0.0.1:9/unreachable', signingKey: KEY });
    try {
      const user = await createUser(t.idp);
      expect(user.userId).toMatch(/^\d+$/);
      t.idp.setEventTarget(null);
      const quiet = await createUser(t.idp);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(receiver.received.filter((r) => r.body.aggregateID === quiet.userId)).toEqual([]);
    } finally {
      t.idp.setEventTarget({ url: receiver.url, signingKey: KEY });
    }
  });
});
