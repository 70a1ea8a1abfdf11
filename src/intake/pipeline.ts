import type { IncomingMessage } from 'node:http';
import type { Config } from '../config';
import { AppError } from '../core/errors';
import type { EventDisposition, SourceName } from '../core/event';
import { IngestError, type IngestOutcome } from '../outbox/ingest';
import type { NewEvent } from '../outbox/insert-events';
import type { EventIdentity, IncomingWebhook, SourceAdapter } from '../sources/types';
import { parseJsonObject, readBodyText } from './request-body';

/**
 * The one intake pipeline: body -> verify -> identify -> store. The webhook
 * route feeds it HTTP requests; `mappings preview`, the mapping examples and
 * the tests feed bare bodies through the same identify and row-building steps
 * (see synthetic-events.ts). The answer is ok only once the event is committed
 * (or was already: a duplicate), or when its type is dropped.
 */

/** Why a delivery was refused: the label of callsync_webhooks_rejected_total. */
export type RefusalReason = 'not_found' | 'too_large' | 'bad_request' | 'unauthorized' | 'unavailable';

export interface Refusal {
  ok: false;
  reason: RefusalReason;
  error: AppError;
  /** The database's own error when it refused a value: for the log, never for the vendor (it can quote the body). */
  databaseError?: IngestError;
}

export type IntakeResult = { ok: true; eventType: string; disposition: EventDisposition; outcome: IngestOutcome | 'dropped' } | Refusal;

/** One delivery as the HTTP layer hands it over. */
export interface Delivery {
  request: Request;
  /** Node's request stream under @hono/node-server, read directly (see readBodyText). */
  incoming?: IncomingMessage | undefined;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface IntakeDeps {
  config: Config;
  now: () => Date;
  /** What the source's mapping does with an event type. */
  classify(source: SourceName, eventType: string): EventDisposition;
  /** The outbox insert; resolves once committed. */
  submit(event: NewEvent): Promise<IngestOutcome>;
}

/** Vendor ids are GUIDs and short numbers; a longer key is not an id, and would not fit the dedupe index. */
const MAX_KEY_LENGTH = 1_000;

export async function receiveWebhook(adapter: SourceAdapter, delivery: Delivery, deps: IntakeDeps): Promise<IntakeResult> {
  const { params } = delivery;
  if (adapter.pathEvents && !adapter.pathEvents.includes(params.event ?? '')) {
    return refuse('not_found', new AppError('unknown_event', `unknown ${adapter.name} event '${params.event}'; expected one of ${adapter.pathEvents.join(', ')}`));
  }

  let rawBody: string;
  try {
    rawBody = await readBodyText(delivery.request, deps.config.MAX_BODY_BYTES, delivery.incoming);
  } catch (err) {
    if (err instanceof AppError) return refuse(err.code === 'payload_too_large' ? 'too_large' : 'bad_request', err);
    throw err;
  }

  const receivedAt = deps.now();
  const admitted = verifyAndIdentify(adapter, { rawBody, headers: delivery.headers, params, query: delivery.query, receivedAt }, deps.config);
  if (!admitted.ok) return admitted;
  const { webhook, identity } = admitted;

  const disposition = deps.classify(adapter.name, identity.eventType);
  if (disposition === 'drop') return { ok: true, eventType: identity.eventType, disposition, outcome: 'dropped' };
  try {
    const outcome = await deps.submit(outboxEvent(adapter, webhook, identity, disposition === 'sync' ? 'pending' : 'ignored'));
    return { ok: true, eventType: identity.eventType, disposition, outcome };
  } catch (err) {
    if (!(err instanceof IngestError)) throw err;
    if (err.failure === 'data') {
      return {
        ...refuse('bad_request', new AppError('bad_request', 'the event could not be stored: the database refused one of its values as text or JSON')),
        databaseError: err,
      };
    }
    return refuse('unavailable', new AppError('database_unavailable', 'the event could not be stored right now; please retry', { cause: err }));
  }
}

/**
 * Verify, then parse, then identify. The credential is checked before the
 * body is validated (the adapter sees `json: null` when it is not a JSON
 * object), so a caller without credentials learns nothing about what we accept.
 */
function verifyAndIdentify(
  adapter: SourceAdapter,
  received: Omit<IncomingWebhook, 'json'>,
  config: Config,
): { ok: true; webhook: IncomingWebhook; identity: EventIdentity } | Refusal {
  const { rawBody, headers, params, query, receivedAt } = received;
  const parsed = parseJsonObject(rawBody);
  // Literal objects, not spreads: this runs for every webhook.
  const verdict = adapter.verify({ rawBody, headers, params, query, receivedAt, json: parsed.ok ? parsed.json : null }, config, receivedAt);
  if (!verdict.ok) return refuse('unauthorized', new AppError('unauthorized', `${adapter.name}: ${verdict.reason}`));
  if (!parsed.ok) return refuse('bad_request', parsed.error);

  const webhook: IncomingWebhook = { rawBody, headers, params, query, receivedAt, json: parsed.json };
  const identified = identifyChecked(adapter, webhook, config);
  return identified.ok ? { ok: true, webhook, identity: identified.identity } : identified;
}

/** The adapter's identity of a verified event, refused when a key is too long to be an id (also for synthetic events). */
export function identifyChecked(adapter: SourceAdapter, webhook: IncomingWebhook, config: Config): { ok: true; identity: EventIdentity } | Refusal {
  const identity = adapter.identify(webhook, config);
  for (const [what, key] of [['event id (dedupe key)', identity.dedupeKey], ['call id', identity.callKey]] as const) {
    if (key !== null && key.length > MAX_KEY_LENGTH) {
      return refuse('bad_request', new AppError('bad_request', `the event's ${what} is ${key.length} characters long; at most ${MAX_KEY_LENGTH} are accepted`));
    }
  }
  return { ok: true, identity };
}

/** The outbox row for an identified event. An event without a call is filed as a call of its own. */
export function outboxEvent(adapter: SourceAdapter, webhook: IncomingWebhook, identity: EventIdentity, status: NewEvent['status']): NewEvent {
  return {
    source: adapter.name,
    eventType: identity.eventType,
    dedupeKey: identity.dedupeKey,
    callKey: identity.callKey ?? `event:${identity.dedupeKey}`,
    vendorTime: identity.vendorTime,
    vendorTimeRaw: identity.vendorTimeRaw,
    receivedAt: webhook.receivedAt,
    rawBody: webhook.rawBody,
    payload: webhook.json,
    headers: keptHeaders(adapter, webhook.headers),
    status,
  };
}

/** The headers stored with the event: the source's keptHeaders (names already lower-case). */
function keptHeaders(adapter: SourceAdapter, headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of adapter.keptHeaders) {
    const value = headers[name];
    if (value !== undefined) out[name] = value;
  }
  return out;
}

function refuse(reason: RefusalReason, error: AppError): Refusal {
  return { ok: false, reason, error };
}
