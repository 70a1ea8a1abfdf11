import type { Queryable } from '../db/client';
import type { CallSyncRow } from '../db/rows';
import type { JsonValue } from '../core/json';
import type { SourceName } from '../core/event';
import { repairJsonText } from './pg-text';

/** How one attempt on one call ended. */
export interface SyncCompletion {
  id: number;
  source: SourceName;
  callKey: string;
  claimedVersion: number;
  /** The newest event folded in: events up to it are marked with the outcome. */
  maxEventId: number;
  /** released: the write was cut short by our own shutdown; due again at once, no attempt used. */
  outcome: 'synced' | 'retry' | 'failed' | 'released';
  /** 1-based number of this attempt. */
  attempt: number;
  target: string;
  startedAt: Date;
  /** synced: the CRM ids. */
  crmId?: string | null;
  crmFollowupId?: string | null;
  activity?: JsonValue;
  crmPayload?: JsonValue;
  /** retry: when to try again. */
  nextAttemptAt?: Date;
  /** Whether this attempt counts against SYNC_MAX_ATTEMPTS (a quota pause does not). */
  countsAsAttempt: boolean;
  errorKind?: string;
  error?: string;
  httpStatus?: number | null;
  crmResponse?: JsonValue;
}

/**
 * Records the outcome of a batch of attempts in one statement.
 *
 * Why this shape:
 * - `locked_by = $token` makes a completion a no-op when this claim's lease
 *   expired and another worker took the call: the newer sync owns the row.
 * - A call is only 'synced' when its version is still the one claimed: an
 *   event that arrived during the CRM request leaves it 'pending' and due
 *   now, so the late event is folded into the next sync instead of lost.
 * - The call rows are locked in (source, call_key) order, the same order
 *   intake's upsert uses, so the two cannot deadlock.
 * - A final failure while a new event arrived leaves the call pending with
 *   a fresh attempt budget, as intake does for a failed call: the new event
 *   may be what fixes it.
 * - activity and crm_payload are the last attempt's (none when its mapping
 *   failed), so the admin never sees an older payload as the latest.
 * - The CRM ids belong to the target that wrote them: when another target
 *   writes the call (a switch from dry-run to Salesforce), its ids replace
 *   the old ones instead of mixing with them.
 * - The events folded in (id <= max_event_id) mirror the call's outcome, and
 *   every attempt lands in sync_attempts for the admin's history.
 * - The batch comes as one jsonb document: parsed once, each activity and
 *   payload taken from it as jsonb. (As json, Postgres validated the text,
 *   then parsed every activity and payload again: a third more time.)
 */
const COMPLETE_SQL = `
WITH input AS (
  SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(
    id bigint, claimed_version int, max_event_id bigint, outcome text, attempt int, target text, started_at timestamptz,
    crm_id text, crm_followup_id text, activity jsonb, crm_payload jsonb, next_attempt_at timestamptz,
    counts boolean, error_kind text, error text, http_status int, crm_response jsonb)
),
locked AS (
  SELECT c.id FROM call_syncs c JOIN input i ON i.id = c.id
  WHERE c.locked_by = $1
  ORDER BY c.source, c.call_key
  FOR UPDATE OF c
),
updated AS (
  UPDATE call_syncs c SET
    status = CASE
      WHEN i.outcome = 'synced' AND c.version = i.claimed_version THEN 'synced'
      WHEN i.outcome = 'failed' AND c.version = i.claimed_version THEN 'failed'
      ELSE 'pending' END,
    attempts = CASE
      WHEN i.outcome = 'synced' THEN 0
      WHEN i.outcome = 'failed' AND c.version <> i.claimed_version THEN 0
      WHEN i.counts THEN c.attempts + 1
      ELSE c.attempts END,
    next_attempt_at = CASE WHEN i.outcome = 'retry' THEN i.next_attempt_at ELSE now() END,
    -- Synced, but events arrived meanwhile: those are now the oldest pending.
    pending_since = CASE
      WHEN i.outcome = 'synced' AND c.version <> i.claimed_version THEN COALESCE(
        (SELECT min(e.received_at) FROM webhook_events e
         WHERE e.source = c.source AND e.call_key = c.call_key AND e.id > i.max_event_id), now())
      ELSE c.pending_since END,
    synced_version = CASE WHEN i.outcome = 'synced' THEN i.claimed_version ELSE c.synced_version END,
    synced_at = CASE WHEN i.outcome = 'synced' THEN now() ELSE c.synced_at END,
    target = i.target,
    crm_id = CASE WHEN c.target IS DISTINCT FROM i.target THEN i.crm_id ELSE COALESCE(i.crm_id, c.crm_id) END,
    crm_followup_id = CASE WHEN c.target IS DISTINCT FROM i.target THEN i.crm_followup_id ELSE COALESCE(i.crm_followup_id, c.crm_followup_id) END,
    -- The last attempt's own fold and payload: an attempt whose mapping failed
    -- shows none rather than an older attempt's as if it were its own.
    activity = CASE WHEN i.outcome = 'released' THEN c.activity ELSE i.activity END,
    crm_payload = CASE WHEN i.outcome = 'released' THEN c.crm_payload ELSE i.crm_payload END,
    -- A released attempt (our shutdown, a lost lease) says nothing about the
    -- call: the last real attempt's error and CRM answer stay on show.
    last_error = CASE WHEN i.outcome = 'synced' THEN NULL WHEN i.outcome = 'released' THEN c.last_error ELSE i.error END,
    last_error_kind = CASE WHEN i.outcome = 'synced' THEN NULL WHEN i.outcome = 'released' THEN c.last_error_kind ELSE i.error_kind END,
    last_http_status = CASE WHEN i.outcome = 'released' THEN c.last_http_status ELSE i.http_status END,
    last_response = CASE WHEN i.outcome = 'released' THEN c.last_response ELSE i.crm_response END,
    locked_by = NULL,
    locked_until = NULL,
    updated_at = now()
  FROM input i, locked l
  WHERE c.id = i.id AND l.id = c.id
  RETURNING c.id, c.source, c.call_key, c.status, c.attempts, c.next_attempt_at, c.last_error
),
events AS (
  UPDATE webhook_events e SET
    status = CASE WHEN u.status = 'failed' THEN 'failed' WHEN i.outcome = 'synced' THEN 'synced' ELSE 'pending' END,
    attempts = CASE WHEN i.outcome = 'released' THEN e.attempts ELSE e.attempts + 1 END,
    next_attempt_at = CASE WHEN u.status = 'pending' AND i.outcome <> 'synced' THEN u.next_attempt_at ELSE NULL END,
    last_error = CASE WHEN i.outcome = 'synced' THEN NULL ELSE u.last_error END
  FROM updated u JOIN input i ON i.id = u.id
  WHERE e.source = u.source AND e.call_key = u.call_key AND e.id <= i.max_event_id
    AND e.status IN ('pending', 'failed', 'synced')
  RETURNING 1
),
attempts AS (
  INSERT INTO sync_attempts (call_sync_id, attempt, target, worker_id, started_at, outcome, error_kind, error, http_status, crm_response)
  SELECT u.id, i.attempt, i.target, $1, i.started_at,
         CASE WHEN i.outcome = 'retry' AND u.status = 'failed' THEN 'failed' ELSE i.outcome END,
         i.error_kind, i.error, i.http_status, i.crm_response
  FROM updated u JOIN input i ON i.id = u.id
  RETURNING 1
)
SELECT u.id, u.status, u.attempts FROM updated u
`;

/** Each call the completion wrote (a call whose lease was lost is missing), as it is now. */
export type CompletionResult = Pick<CallSyncRow, 'id' | 'status' | 'attempts'>;

export async function completeSyncs(
  db: Queryable,
  token: string,
  completions: SyncCompletion[],
): Promise<CompletionResult[]> {
  if (completions.length === 0) return [];
  const input = completions.map((c) => ({
    id: c.id,
    claimed_version: c.claimedVersion,
    max_event_id: c.maxEventId,
    outcome: c.outcome,
    attempt: c.attempt,
    target: c.target,
    started_at: c.startedAt.toISOString(),
    crm_id: c.crmId ?? null,
    crm_followup_id: c.crmFollowupId ?? null,
    activity: c.activity ?? null,
    crm_payload: c.crmPayload ?? null,
    next_attempt_at: c.nextAttemptAt?.toISOString() ?? null,
    counts: c.countsAsAttempt,
    error_kind: c.errorKind ?? null,
    error: c.error ?? null,
    http_status: c.httpStatus ?? null,
    crm_response: c.crmResponse ?? null,
  }));
  // A CRM's response or message may hold U+0000 or a lone surrogate, which
  // valid JSON allows and Postgres refuses: repaired here, or the whole
  // batch's completion would fail and be written to the CRM again forever.
  const json = JSON.stringify(input);
  return db.query<CompletionResult>(COMPLETE_SQL, [token, json.includes('\\u') ? repairJsonText(json) : json], { prepare: true });
}
