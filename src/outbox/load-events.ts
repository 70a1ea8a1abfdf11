import type { Queryable } from '../db/client';
import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './stored-event-row';

/**
 * The syncable events of the given calls, oldest first. Ignored event types
 * (status 'ignored') are not part of any activity; discarded ones are kept
 * out too. One query for the whole batch, served by webhook_events_call.
 * (The worker reads its events with the claim, claim-calls.ts; this serves
 * checks that want a call's events as the fold would see them.)
 */
const LOAD_EVENTS_SQL = `
SELECT ${EVENT_COLUMNS}
FROM webhook_events e
JOIN json_to_recordset($1::json) AS k(source text, call_key text)
  ON e.source = k.source AND e.call_key = k.call_key
WHERE e.status IN ('pending', 'synced', 'failed')
ORDER BY e.id
`;

export async function loadEvents(
  db: Queryable,
  calls: ReadonlyArray<{ source: SourceName; callKey: string }>,
): Promise<Map<string, StoredEvent[]>> {
  const rows = await db.query<EventRow>(LOAD_EVENTS_SQL, [
    JSON.stringify(calls.map((c) => ({ source: c.source, call_key: c.callKey }))),
  ]);
  const byCall = new Map<string, StoredEvent[]>();
  for (const r of rows) {
    const key = callMapKey(r.source, r.call_key);
    let list = byCall.get(key);
    if (!list) byCall.set(key, (list = []));
    list.push(toStoredEvent(r));
  }
  return byCall;
}

export function callMapKey(source: string, callKey: string): string {
  return `${source}\u0000${callKey}`;
}
