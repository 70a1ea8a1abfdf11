import type { Queryable } from '../db/client';
import type { JsonValue } from '../core/json';
import { PENDING_CHANNEL } from './pending-channel';
import { reclassifyIgnored, type EventTypeRef } from './reclassify-ignored';
import { resetToPendingSql } from './reset-to-pending';
import { LOCK_ONE_CALL_SQL, singleOutcome, type SingleCallRow, type SingleOutcome } from './single-call-lock';

/**
 * Queues one call now. `activity` (the fold with the current mappings) is
 * stored on the call so the admin sees it before the worker's attempt; null
 * keeps the stored one.
 *
 * Why this shape: one statement, so the row lock (FOR UPDATE on the call)
 * lasts only for it; the lease is judged on the row as it is once locked, so
 * a claim that commits while we wait is seen and respected; the NOTIFY is
 * queued only when a row was replayed and is delivered at commit.
 */
const REPLAY_ONE_SQL = `
WITH ${LOCK_ONE_CALL_SQL},
${resetToPendingSql({ from: 'target t', where: 'c.id = t.id AND NOT t.leased', alsoSet: 'activity = COALESCE($2::jsonb, c.activity)' })}
SELECT t.status, t.attempts, t.leased, t.locked_by, t.locked_until,
       (SELECT count(*) FROM events)::int AS events,
       (SELECT pg_notify('${PENDING_CHANNEL}', '') FROM replayed LIMIT 1) IS NULL AS notified
FROM target t
`;

/**
 * `reclassify`: the event types the current mappings sync; the call's
 * ignored events of those types become pending. Two statements: pass a
 * transaction so both commit together.
 */
export async function replayCall(
  db: Queryable,
  id: number,
  activity: JsonValue | null,
  reclassify: readonly EventTypeRef[] = [],
): Promise<SingleOutcome> {
  const rows = await db.query<SingleCallRow>(REPLAY_ONE_SQL, [id, activity === null ? null : JSON.stringify(activity)]);
  const outcome = singleOutcome(rows[0]);
  if (outcome.outcome !== 'done') return outcome;
  return { ...outcome, reclassified: await reclassifyIgnored(db, [id], reclassify) };
}
