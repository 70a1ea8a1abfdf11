import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import type { WebhookEventRow } from '../db/rows';

/**
 * A webhook_events row as the fold reads it: the columns of the schema,
 * with the source narrowed to a registered one and the payload to an object
 * (intake stores nothing else there).
 */
export type EventRow = Pick<
  WebhookEventRow,
  'id' | 'event_type' | 'dedupe_key' | 'call_key' | 'vendor_time' | 'vendor_time_raw' | 'received_at' | 'headers'
> & { source: SourceName; payload: Record<string, unknown> };

export const EVENT_COLUMNS =
  'e.id, e.source, e.event_type, e.dedupe_key, e.call_key, e.vendor_time, e.vendor_time_raw, e.received_at, e.payload, e.headers';

export function toStoredEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    source: r.source,
    eventType: r.event_type,
    dedupeKey: r.dedupe_key,
    callKey: r.call_key,
    vendorTime: r.vendor_time,
    vendorTimeRaw: r.vendor_time_raw,
    receivedAt: r.received_at,
    payload: r.payload,
    headers: r.headers,
  };
}
