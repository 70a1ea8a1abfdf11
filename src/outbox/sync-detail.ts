import type { Queryable } from '../db/client';
import type { CallSyncRow, SyncAttemptRow, WebhookEventRow } from '../db/rows';
import { SUMMARY_COLUMNS, type SyncSummaryRow } from './list-syncs';

/** A webhook_events row as the admin shows it: every column, the raw body too. */
export type DetailEventRow = Pick<
  WebhookEventRow,
  | 'id'
  | 'source'
  | 'event_type'
  | 'dedupe_key'
  | 'call_key'
  | 'status'
  | 'received_at'
  | 'vendor_time'
  | 'vendor_time_raw'
  | 'attempts'
  | 'last_error'
  | 'headers'
  | 'payload'
  | 'raw_body'
>;

export type AttemptRow = Pick<
  SyncAttemptRow,
  'attempt' | 'target' | 'worker_id' | 'started_at' | 'finished_at' | 'outcome' | 'error_kind' | 'error' | 'http_status' | 'crm_response'
>;

export type SyncDetailRow = SyncSummaryRow & Pick<CallSyncRow, 'version' | 'locked_by' | 'last_response' | 'activity' | 'crm_payload'>;

const EVENT_COLUMNS = `e.id, e.source, e.event_type, e.dedupe_key, e.call_key, e.status, e.received_at, e.vendor_time,
  e.vendor_time_raw, e.attempts, e.last_error, e.headers, e.payload, e.raw_body`;

/**
 * One call with its events (oldest first) and its attempt history (newest
 * first), each capped at `limits` rows: a call with thousands of events
 * still answers quickly. Events come through webhook_events_call, attempts
 * through sync_attempts_call; the two are read in parallel.
 */
export async function loadSyncDetailRows(
  db: Queryable,
  id: number,
  limits: { events: number; attempts: number },
): Promise<{ call: SyncDetailRow; events: DetailEventRow[]; attempts: AttemptRow[] } | undefined> {
  const rows = await db.query<SyncDetailRow>(
    `SELECT ${SUMMARY_COLUMNS}, c.version, c.locked_by, c.last_response, c.activity, c.crm_payload
     FROM call_syncs c WHERE c.id = $1`,
    [id],
  );
  const call = rows[0];
  if (!call) return undefined;
  const [events, attempts] = await Promise.all([
    db.query<DetailEventRow>(
      `SELECT ${EVENT_COLUMNS} FROM webhook_events e WHERE e.source = $1 AND e.call_key = $2 ORDER BY e.id LIMIT $3`,
      [call.source, call.call_key, limits.events],
    ),
    db.query<AttemptRow>(
      `SELECT attempt, target, worker_id, started_at, finished_at, outcome, error_kind, error, http_status, crm_response
       FROM sync_attempts WHERE call_sync_id = $1 ORDER BY id DESC LIMIT $2`,
      [id, limits.attempts],
    ),
  ]);
  return { call, events, attempts };
}

/** One event, with the id of its call (null once retention removed the call). */
export async function loadEventRow(db: Queryable, id: number): Promise<(DetailEventRow & { sync_id: number | null }) | undefined> {
  const rows = await db.query<DetailEventRow & { sync_id: number | null }>(
    `SELECT ${EVENT_COLUMNS}, c.id AS sync_id
     FROM webhook_events e LEFT JOIN call_syncs c ON c.source = e.source AND c.call_key = e.call_key
     WHERE e.id = $1`,
    [id],
  );
  return rows[0];
}
