import type { Queryable } from '../db/client';
import type { WebhookEventRow } from '../db/rows';
import type { SourceName } from '../core/event';
import { pgIdArray, pgTextArray } from './pg-text';

/**
 * Reclassification: intake stores an event whose type the mappings ignore as
 * 'ignored', outside every activity. When RevOps later moves that type to
 * `sync`, a replay of the call (single or bulk) makes those events 'pending'
 * so the fold takes them in. The mappings decide which types that is, so the
 * caller passes them in.
 */

/** An event type of a source, as the mappings classify it. */
export interface EventTypeRef {
  source: SourceName;
  eventType: string;
}

/**
 * Makes the ignored events of the given calls pending when their type is
 * one of `types` (those the current mappings now sync), and counts them into
 * their call: version (the events folded), pending_since and the event
 * window. Run it in the transaction that replayed the calls: their rows are
 * locked already, so the events come second, as the lock order wants.
 * Answers how many events moved.
 */
const RECLASSIFY_SQL = `
WITH types AS (
  SELECT * FROM unnest($2::text[], $3::text[]) AS t(source, event_type)
),
moved AS (
  UPDATE webhook_events e SET status = 'pending', next_attempt_at = NULL
  FROM call_syncs c JOIN types t ON t.source = c.source
  WHERE c.id = ANY($1::bigint[])
    AND e.source = c.source AND e.call_key = c.call_key AND e.event_type = t.event_type
    AND e.status = 'ignored'
  RETURNING c.id AS call_id, e.received_at
),
counted AS (
  UPDATE call_syncs c SET
    version = c.version + m.n,
    pending_since = LEAST(c.pending_since, m.oldest),
    first_event_at = LEAST(c.first_event_at, m.oldest),
    last_event_at = GREATEST(c.last_event_at, m.newest)
  FROM (SELECT call_id, count(*)::int AS n, min(received_at) AS oldest, max(received_at) AS newest FROM moved GROUP BY call_id) m
  WHERE c.id = m.call_id
  RETURNING m.n
)
SELECT COALESCE(sum(n), 0)::int AS events FROM counted
`;

export async function reclassifyIgnored(db: Queryable, callIds: readonly number[], types: readonly EventTypeRef[]): Promise<number> {
  if (callIds.length === 0 || types.length === 0) return 0;
  const rows = await db.query<{ events: number }>(RECLASSIFY_SQL, [
    pgIdArray(callIds),
    pgTextArray(types.map((t) => t.source)),
    pgTextArray(types.map((t) => t.eventType)),
  ]);
  return rows[0]?.events ?? 0;
}

/** The event types the given calls have stored as ignored (served by webhook_events_call). */
export async function ignoredTypes(db: Queryable, callIds: readonly number[]): Promise<EventTypeRef[]> {
  if (callIds.length === 0) return [];
  const rows = await db.query<Pick<WebhookEventRow, 'event_type'> & { source: SourceName }>(
    `SELECT DISTINCT e.source, e.event_type
     FROM call_syncs c JOIN webhook_events e ON e.source = c.source AND e.call_key = c.call_key
     WHERE c.id = ANY($1::bigint[]) AND e.status = 'ignored'`,
    [pgIdArray(callIds)],
  );
  return rows.map((r) => ({ source: r.source, eventType: r.event_type }));
}
