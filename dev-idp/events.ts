import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from './context.js';
import type { GrantRow, UserRow } from './store.js';

/**
 * Zitadel Actions v2 event delivery, as a REST webhook target with a signing key would receive it:
 * body `{aggregateID, aggregateType, resourceOwner, instanceID, version, sequence, event_type, created_at,
 * userID, event_payload}` and header `ZITADEL-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
 *
 * Delivery is fire-and-forget: it starts after the change is committed, never delays or fails the API
 * reply, and retries a few times with backoff (Zitadel's targets retry too). The target is settable at
 * any time, because the service that receives the events may learn its own port only after it listens.
 */
export interface EventTarget {
  url: string;
  signingKey: string;
}

export interface WebhookEvent {
  aggregateID: string;
  aggregateType: 'user' | 'usergrant';
  resourceOwner: string;
  instanceID: string;
  version: 'v2';
  sequence: number;
  event_type: string;
  created_at: string;
  /** Zitadel puts the editor here (who made the change); the development IdP's editor is its service account. */
  userID: string;
  event_payload: Record<string, unknown>;
}

/** The one instance of the development IdP; Zitadel would put its instance id here. */
export const DEV_INSTANCE_ID = '300000000000000000';
const SERVICE_ACCOUNT_USER_ID = '300000000000000009';
const ATTEMPT_TIMEOUT_MS = 2_000;
const RETRY_DELAYS_MS = [100, 500, 2_000];

export function signWebhookBody(body: string, signingKey: string, unixSeconds: number): string {
  const mac = createHmac('sha256', signingKey).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

export class EventDispatcher {
  private target: EventTarget | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** Aborts deliveries and their backoff on close, so a dead target cannot hold the shutdown. */
  private readonly stopping = new AbortController();

  constructor(private readonly logger: Logger) {}

  setTarget(target: EventTarget | null): void {
    this.target = target;
  }

  userEvent(type: string, user: UserRow, payload: Record<string, unknown> = {}): void {
    this.emit({
      aggregateID: user.id,
      aggregateType: 'user',
      resourceOwner: user.org_id,
      sequence: Number(user.sequence),
      event_type: type,
      event_payload: payload,
    });
  }

  grantEvent(type: string, grant: GrantRow): void {
    this.emit({
      aggregateID: grant.id,
      aggregateType: 'usergrant',
      resourceOwner: grant.org_id,
      sequence: Number(grant.sequence),
      event_type: type,
      event_payload: {
        userId: grant.user_id,
        projectId: grant.project_id,
        roleKeys: grant.role_keys,
      },
    });
  }

  /** Waits for deliveries under way (used on close, so none outlives the provider). */
  async close(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled([...this.inFlight]);
  }

  private emit(partial: Omit<WebhookEvent, 'instanceID' | 'version' | 'created_at' | 'userID'>): void {
    const target = this.target;
    if (!target || this.stopping.signal.aborted) return;
    const event: WebhookEvent = {
      ...partial,
      instanceID: DEV_INSTANCE_ID,
      version: 'v2',
      created_at: new Date().toISOString(),
      userID: SERVICE_ACCOUNT_USER_ID,
    };
    const delivery = this.deliver(target, JSON.stringify(event), event).finally(() =>
      this.inFlight.delete(delivery),
    );
    this.inFlight.add(delivery);
  }

  private async deliver(target: EventTarget, body: string, event: WebhookEvent): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let outcome: string;
      try {
        const response = await fetch(target.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'zitadel-signature': signWebhookBody(body, target.signingKey, Math.floor(Date.now() / 1000)),
            'x-request-id': `dev-idp-event-${randomUUID()}`,
          },
          body,
          signal: AbortSignal.any([AbortSignal.timeout(ATTEMPT_TIMEOUT_MS), this.stopping.signal]),
        });
        await response.arrayBuffer().catch(() => undefined);
        // 4xx other than 429 will not get better by retrying (Zitadel treats them as final too).
        if (response.ok || (response.status < 500 && response.status !== 429)) {
          if (!response.ok) {
            this.logger.warn(
              `dev-idp: event ${event.event_type} ${event.aggregateID}/${event.sequence} refused: ${response.status}`,
            );
          }
          return;
        }
        outcome = `HTTP ${response.status}`;
      } catch (error) {
        outcome = error instanceof Error ? error.message : String(error);
      }
      const delay = RETRY_DELAYS_MS[attempt];
      if (this.stopping.signal.aborted) return;
      if (delay === undefined) {
        this.logger.warn(
          `dev-idp: gave up delivering event ${event.event_type} ${event.aggregateID}/${event.sequence}: ${outcome}`,
        );
        return;
      }
      await sleep(delay, undefined, { signal: this.stopping.signal }).catch(() => undefined);
    }
  }
}
