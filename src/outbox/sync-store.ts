import type { Database, Queryable } from '../db/client';
import type { JsonValue } from '../core/json';
import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import { repairJsonText } from './ingest';

/** A call the worker has leased. */
export interface ClaimedCall {
  id: number;
  source: SourceName;
  callKey: string;
  /** The version (event count) seen at claim time; see completeSyncs. */
  version: number;
  attempts: number;
  /** The target the stored CRM ids belong to (the last one that wrote the call). */
  target: string | null;
  crmId: string | null;
  crmFollowupId: string | null;
  lastEventAt: Date;
}

/** A webhook_events row as the fold reads it. */
export type EventRow = {
  id: number;
  source: SourceName;
  event_type: string;
  dedupe_key: string;
  call_key: string;
  vendor_time: Date | null;
  vendor_time_raw: string | null;
  received_at: Date;
  payload: Record<string, unknown>;
  headers: Record<string, string>;
};

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

/**
 * Claiming due calls for this worker.
 *
 * Why this shape:
 * - FOR UPDATE SKIP LOCKED lets N workers claim at once without waiting on
 *   each other or claiming the same call; the row locks last only for this
 *   one statement (autocommit), never across a CRM request.
 * - What keeps other workers away during the CRM request is the lease
 *   (locked_until), held under a token unique to this claim (locked_by), so
 *   a completion or renewal from anyone else, even another slot of the same
 *   process, is a no-op. A worker killed with -9 simply lets it expire, and
 *   the call is claimed again; writes are upserts by external id, so the
 *   second sync updates rather than duplicates.
 * - A call is claimed whole: its events are folded and written together, so
 *   no two workers ever sync the same call at once, and a failing call never
 *   holds up another.
 * - Due order (next_attempt_at, id) is served by the partial index
 *   call_syncs_due.
 */
const CLAIM_SQL = `
UPDATE call_syncs c
SET locked_by = $1,
    locked_until = now() + make_interval(secs => $2),
    claimed_version = c.version
FROM (
  SELECT id FROM call_syncs
  WHERE status = 'pending'
    AND next_attempt_at <= now()
    AND (locked_until IS NULL OR locked_until < now())
  ORDER BY next_attempt_at, id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
) due
WHERE c.id = due.id
RETURNING c.id, c.source, c.call_key, c.version, c.attempts, c.target, c.crm_id, c.crm_followup_id, c.last_event_at
`;

/**
 * The syncable events of the claimed calls, read in a statement of their
 * own, AFTER the claim. Under READ COMMITTED each statement reads the
 * snapshot taken when it starts, while the claim's UPDATE reads `version`
 * from the newest row it locks: an event committed between the two would be
 * counted in claimed_version yet invisible to a join in the claim itself,
 * and the call would be marked synced without it. This statement's snapshot
 * is taken after the claim returned, so it sees every event the claimed
 * version counts (intake bumps the version in the same statement that
 * inserts the event).
 *
 * Ignored and discarded events are not part of any activity. Served by
 * webhook_events_call.
 */
const CLAIMED_EVENTS_SQL = `
SELECT c.id AS call_id, ${EVENT_COLUMNS}
FROM call_syncs c
JOIN webhook_events e ON e.source = c.source AND e.call_key = c.call_key
WHERE c.id = ANY($1::bigint[]) AND e.status IN ('pending', 'synced', 'failed')
ORDER BY c.id, e.id
`;

/**
 * Claims up to `limit` due calls under the lease `token`, then reads their
 * syncable events. The lease does not touch updated_at: a claim is not a
 * change an admin needs to see, and leaving indexed columns alone keeps the
 * update cheap.
 */
export async function claimBatch(
  db: Queryable,
  options: { token: string; leaseSeconds: number; limit: number },
): Promise<Array<{ call: ClaimedCall; events: StoredEvent[] }>> {
  const calls = await db.query<{
    id: number;
    source: SourceName;
    call_key: string;
    version: number;
    attempts: number;
    target: string | null;
    crm_id: string | null;
    crm_followup_id: string | null;
    last_event_at: Date;
  }>(CLAIM_SQL, [options.token, options.leaseSeconds, options.limit], { prepare: true });
  if (calls.length === 0) return [];
  const batch = calls
    .sort((a, b) => a.id - b.id)
    .map((r) => ({
      call: {
        id: r.id,
        source: r.source,
        callKey: r.call_key,
        version: r.version,
        attempts: r.attempts,
        target: r.target,
        crmId: r.crm_id,
        crmFollowupId: r.crm_followup_id,
        lastEventAt: r.last_event_at,
      },
      events: [] as StoredEvent[],
    }));
  const byId = new Map(batch.map((b) => [b.call.id, b.events]));
  const ids = `{${calls.map((c) => c.id).join(',')}}`;
  let rows: Array<EventRow & { call_id: number }>;
  try {
    rows = await db.query<EventRow & { call_id: number }>(CLAIMED_EVENTS_SQL, [ids], { prepare: true });
  } catch (err) {
    // Give the claim back rather than leave the calls leased for a whole
    // lease. (Not one transaction with the claim: that would hold the call
    // rows locked, and intake waiting on them, while the events are read.)
    await db
      .query(`UPDATE call_syncs SET locked_by = NULL, locked_until = NULL WHERE id = ANY($1::bigint[]) AND locked_by = $2`, [ids, options.token])
      .catch(() => {});
    throw err;
  }
  for (const r of rows) byId.get(r.call_id)?.push(toStoredEvent(r));
  return batch;
}

/**
 * The syncable events of the given calls, oldest first. Ignored event types
 * (status 'ignored') are not part of any activity; discarded ones are kept
 * out too. One query for the whole batch, served by webhook_events_call.
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
 *   then parsed every activity and payload again: about a third more time
 *   for a 200-call batch, measured 13.2 against 9.8 ms.)
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

export type CompletionResult = {
  id: number;
  status: string;
  attempts: number;
};

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

/**
 * Renews the leases this claim still holds (a heartbeat while its batch is
 * being written) and answers the ids it still holds: any other id's lease
 * was lost (it expired and another worker may have claimed the call).
 */
export async function extendLeases(db: Queryable, token: string, ids: number[], leaseSeconds: number): Promise<Set<number>> {
  if (ids.length === 0) return new Set();
  const rows = await db.query<{ id: number }>(
    `UPDATE call_syncs SET locked_until = now() + make_interval(secs => $3)
     WHERE id = ANY($2::bigint[]) AND locked_by = $1
     RETURNING id`,
    [token, `{${ids.join(',')}}`, leaseSeconds],
  );
  return new Set(rows.map((r) => r.id));
}
