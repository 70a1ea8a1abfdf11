import type { Queryable } from '../db/client';
import { LOCK_ONE_CALL_SQL, singleOutcome, type SingleCallRow, type SingleOutcome } from './single-call-lock';

/**
 * Discard settles a call the other way than replay: the call and its
 * not-yet-synced events become 'discarded', so the worker never claims them
 * again (a later webhook for the call makes it pending again, see
 * insert-events.ts; a replay undoes a discard). An expired lease is cleared,
 * so a late completion from a dead worker cannot undo the discard.
 */

export type DiscardOutcome = SingleOutcome | { outcome: 'synced' };

/**
 * Discards one call. A synced call is refused ('synced'): it is already in
 * the CRM, there is nothing left to discard. Same locking as replay.
 */
const DISCARD_ONE_SQL = `
WITH ${LOCK_ONE_CALL_SQL},
discarded AS (
  UPDATE call_syncs c SET
    status = 'discarded',
    locked_by = NULL,
    locked_until = NULL,
    updated_at = now()
  FROM target t
  WHERE c.id = t.id AND NOT t.leased AND t.status <> 'synced'
  RETURNING c.id, c.source, c.call_key
),
events AS (
  UPDATE webhook_events e SET status = 'discarded', next_attempt_at = NULL
  FROM discarded d
  WHERE e.source = d.source AND e.call_key = d.call_key AND e.status IN ('pending', 'failed')
  RETURNING 1
)
SELECT t.status, t.attempts, t.leased, t.locked_by, t.locked_until,
       (SELECT count(*) FROM events)::int AS events
FROM target t
`;

export async function discardCall(db: Queryable, id: number): Promise<DiscardOutcome> {
  const rows = await db.query<SingleCallRow>(DISCARD_ONE_SQL, [id]);
  const row = rows[0];
  if (row && !row.leased && row.status === 'synced') return { outcome: 'synced' };
  return singleOutcome(row);
}
