import type { CallSyncRow } from '../db/rows';
import type { SyncStatus } from '../db/schema';

/**
 * How the admin's single-call actions (replay, discard) take their call.
 *
 * `target` locks the call row (FOR UPDATE) for the one statement only, and
 * reads its lease as it is once locked: a claim that commits while we wait is
 * seen. A call whose lease is active (locked_until > now()) is being written
 * to the CRM right now: the action leaves it alone and answers 'busy' (the
 * admin gets a 409 and can try again in a moment). Replaying it under the
 * worker's feet would be pointless anyway: the worker folds with the current
 * mappings when it writes, and a call that changes meanwhile stays pending.
 *
 * Lock order: a call row before its events, several calls in (source,
 * call_key) order, the order intake and completeSyncs use, so the admin's
 * statements cannot deadlock with the worker or with intake.
 */
export const LOCK_ONE_CALL_SQL = `target AS (
  SELECT id, source, call_key, status, attempts, locked_by, locked_until,
         COALESCE(locked_until > now(), false) AS leased
  FROM call_syncs WHERE id = $1
  FOR UPDATE
)`;

/** What a single-call statement answers: the call as it was when locked, and the events it changed. */
export type SingleCallRow = Pick<CallSyncRow, 'status' | 'attempts' | 'locked_by' | 'locked_until'> & { leased: boolean; events: number };

export type SingleOutcome =
  | { outcome: 'missing' }
  | { outcome: 'busy'; lockedBy: string | null; lockedUntil: Date }
  | { outcome: 'done'; previousStatus: SyncStatus; previousAttempts: number; events: number; reclassified: number };

export function singleOutcome(
  row: SingleCallRow | undefined,
): SingleOutcome {
  if (!row) return { outcome: 'missing' };
  if (row.leased && row.locked_until) return { outcome: 'busy', lockedBy: row.locked_by, lockedUntil: row.locked_until };
  return { outcome: 'done', previousStatus: row.status, previousAttempts: row.attempts, events: row.events, reclassified: 0 };
}
