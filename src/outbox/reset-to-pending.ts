/**
 * Replay's one rule, shared by the single and the bulk replay: a call goes
 * back in the worker's queue as if it were new. Status 'pending', attempts 0
 * (a fresh retry budget), due now; its failed and discarded events become
 * 'pending' again (synced ones stay 'synced'; the worker folds all of them).
 * Its last error, HTTP status and CRM response stay on the row as history
 * until the next attempt overwrites them; sync_attempts keeps every attempt.
 *
 * An expired lease (a worker that died or hung) is cleared: that is what
 * makes a late completion from that worker a no-op (completeSyncs only
 * writes rows still `locked_by` it), so a stale outcome never overwrites the
 * replay. An active lease is the caller's to respect, in `where`.
 *
 * Two CTEs, `replayed` (RETURNING id, source, call_key) and `events`, for a
 * statement whose call rows are already locked in `from` (the lock order:
 * call rows first, then their events). `alsoSet`: one more assignment.
 */
export function resetToPendingSql(options: { from: string; where: string; alsoSet?: string }): string {
  return `replayed AS (
  UPDATE call_syncs c SET
    status = 'pending',
    attempts = 0,
    next_attempt_at = now(),
    -- The oldest event the replay makes pending again (the outbox-age metric).
    pending_since = COALESCE(
      (SELECT min(e.received_at) FROM webhook_events e
       WHERE e.source = c.source AND e.call_key = c.call_key AND e.status IN ('pending', 'failed', 'discarded')),
      now()),
    locked_by = NULL,
    locked_until = NULL,${options.alsoSet === undefined ? '' : `\n    ${options.alsoSet},`}
    updated_at = now()
  FROM ${options.from}
  WHERE ${options.where}
  RETURNING c.id, c.source, c.call_key
),
events AS (
  UPDATE webhook_events e SET status = 'pending', next_attempt_at = NULL
  FROM replayed r
  WHERE e.source = r.source AND e.call_key = r.call_key AND e.status IN ('failed', 'discarded')
  RETURNING 1
)`;
}
