import type { Queryable } from '../db/client';

/**
 * Deletes one small batch of what retention allows: synced and discarded
 * calls (with their events and, by ON DELETE CASCADE, their attempt history)
 * and ignored events, older than `days`. Failed and pending calls are never
 * deleted: they wait for a replay or a discard.
 *
 * Small batches with SKIP LOCKED keep each transaction short, so retention
 * never blocks intake or a worker for long, and two workers running it at
 * once simply take different rows.
 */
const DELETE_SYNCED_SQL = `
WITH doomed AS (
  SELECT id, source, call_key FROM call_syncs
  WHERE status IN ('synced', 'discarded') AND updated_at < now() - make_interval(days => $1)
  ORDER BY updated_at
  LIMIT $2
  FOR UPDATE SKIP LOCKED
),
gone_events AS (
  DELETE FROM webhook_events e USING doomed d
  WHERE e.source = d.source AND e.call_key = d.call_key AND e.status IN ('synced', 'ignored', 'discarded')
  RETURNING 1
),
gone_calls AS (
  DELETE FROM call_syncs c USING doomed d WHERE c.id = d.id RETURNING 1
)
SELECT (SELECT count(*)::int FROM gone_calls) AS calls, (SELECT count(*)::int FROM gone_events) AS events
`;

const DELETE_IGNORED_SQL = `
DELETE FROM webhook_events WHERE id IN (
  SELECT id FROM webhook_events
  WHERE received_at < now() - make_interval(days => $1) AND status = 'ignored'
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
`;

export async function deleteExpiredBatch(
  db: Queryable,
  options: { days: number; batchSize: number },
): Promise<{ calls: number; events: number }> {
  const [synced] = await db.query<{ calls: number; events: number }>(DELETE_SYNCED_SQL, [options.days, options.batchSize]);
  const ignored = await db.query(`${DELETE_IGNORED_SQL} RETURNING 1`, [options.days, options.batchSize]);
  return { calls: synced?.calls ?? 0, events: (synced?.events ?? 0) + ignored.length };
}
