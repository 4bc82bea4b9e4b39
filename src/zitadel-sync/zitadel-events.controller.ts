import { Controller, HttpCode, Inject, Logger, Post, Req } from '@nestjs/common';
import { ApiBody, ApiHeader, ApiNoContentResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../common/errors/api-error.js';
import { JsonBodyLimit } from '../common/http/json-body.js';
import { SkipRateLimit } from '../common/rate-limit/rate-limit.policies.js';
import { Endpoint } from '../common/openapi/api-docs.decorators.js';
import { verifyWebhookSignature } from './webhook-signature.js';
import { ZitadelSyncMetrics } from './zitadel-sync.metrics.js';
import { ZitadelSyncService } from './zitadel-sync.service.js';

export const ZITADEL_EVENTS_PATH = '/api/zitadel/events';
/** The key of the Actions v2 target (string), or null when none is configured. */
export const WEBHOOK_SIGNING_KEY = Symbol('WEBHOOK_SIGNING_KEY');

/** Set by the preParsing hook of ZitadelSyncModule, for this route only. */
export type RequestWithRawBody = FastifyRequest & { rawBody?: Buffer };

@ApiTags('zitadel')
@Controller(ZITADEL_EVENTS_PATH.slice(1))
export class ZitadelEventsController {
  private readonly logger = new Logger(ZitadelEventsController.name);

  constructor(
    @Inject(WEBHOOK_SIGNING_KEY) private readonly signingKey: string | null,
    private readonly sync: ZitadelSyncService,
    private readonly metrics: ZitadelSyncMetrics,
  ) {}

  @Post()
  // Zitadel delivers bursts (bulk imports) from a few addresses; the signature, not a per-IP budget,
  // is what keeps strangers out.
  @SkipRateLimit()
  // Zitadel decides the payload (an event carries the user's whole profile): room beyond the few KiB of
  // the other JSON routes. The shape limits still apply.
  @JsonBodyLimit(256 * 1024)
  @HttpCode(204)
  @Endpoint({
    summary: 'Receive a Zitadel Actions v2 user event (webhook)',
    description:
      'Called by Zitadel, not by clients: no bearer token, but the `ZITADEL-Signature` header must carry a ' +
      'valid HMAC-SHA256 of the raw body made with `ZITADEL_WEBHOOK_SIGNING_KEY`, at most 300 s old. ' +
      'The user is re-read from Zitadel and the local cache updated; deactivation, lock and removal end ' +
      "the user's sessions. Replayed, older and unknown events change nothing and are answered 204 too. " +
      'Without a configured signing key the endpoint does not exist (404).',
    access: 'public',
    errors: [401, 404],
  })
  @ApiHeader({ name: 'ZITADEL-Signature', required: true, description: '`t=<unix seconds>,v1=<hex>`' })
  @ApiBody({
    description: 'The Actions v2 event',
    schema: {
      type: 'object',
      required: ['aggregateID', 'aggregateType', 'sequence', 'event_type'],
      properties: {
        aggregateID: { type: 'string' },
        aggregateType: { type: 'string', example: 'user' },
        resourceOwner: { type: 'string' },
        instanceID: { type: 'string' },
        version: { type: 'string' },
        sequence: { type: 'integer' },
        event_type: { type: 'string', example: 'user.deactivated' },
        created_at: { type: 'string', format: 'date-time' },
        userID: { type: 'string' },
        event_payload: { type: 'object' },
      },
    },
  })
  @ApiNoContentResponse({ description: 'Accepted (applied, or ignored as replayed, older or unknown)' })
  async receiveZitadelEvent(@Req() request: RequestWithRawBody): Promise<void> {
    // No key: the feature is off, and an unauthenticated endpoint that cannot authenticate must not exist.
    if (!this.signingKey) throw new ApiError('not_found', 'Not found');
    const check = verifyWebhookSignature(
      request.headers['zitadel-signature'],
      request.rawBody ?? Buffer.alloc(0),
      this.signingKey,
    );
    if (!check.ok) {
      this.metrics.events.inc({ outcome: 'rejected' });
      this.logger.warn(`Zitadel event refused: signature ${check.reason}`);
      throw ApiError.unauthorized('Invalid or missing ZITADEL-Signature');
    }
    await this.sync.handleEvent(request.body);
  }
}
