import type { Database, Queryable } from '../db/client';
import type { SyncStatus } from '../db/schema';
import type { JsonValue } from '../core/json';
import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import { PENDING_CHANNEL, pgTextArray } from './ingest';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './sync-store';

/**
 * Replay and discard: the admin's two ways of settling a call the worker
 * could not deliver (src/admin/, src/cli/replay.ts).
 *
 * Replay puts a call back in the worker's queue as if it were new:
 * status 'pending', attempts 0 (a fresh retry budget), next_attempt_at now().
 * Its last error, HTTP status and CRM response stay on the row as history
 * until the next attempt overwrites them, and sync_attempts keeps every
 * earlier attempt. Its failed and discarded events go back to 'pending' (the
 * synced ones stay 'synced'; the worker folds all of them anyway). A NOTIFY
 * on PENDING_CHANNEL, sent when the transaction commits, wakes idle workers
 * at once instead of at their next poll.
 *
 * Discard is the opposite: the call and its not-yet-synced events become
 * 'discarded', so the worker never claims them again (a later webhook for the
 * call makes it pending again, see ingest.ts; a replay undoes a discard).
 *
 * The lease: a call whose lease is active (locked_until > now()) is being
 * written to the CRM right now. Neither replay nor discard touches it: the
 * single-call functions answer 'busy' (the admin gets a 409 and can try again
 * in a moment), bulk replay leaves it out and counts it as skipped. Replaying
 * it under the worker's feet would be pointless anyway: the worker folds the
 * call with the current mappings when it writes, and a call that changes
 * meanwhile stays pending (see completeSyncs).
 *
 * An EXPIRED lease (a worker that died or hung) is cleared: locked_by and
 * locked_until become NULL. That is what makes a late completion from that
 * worker a no-op (completeSyncs only writes rows still `locked_by` it), so a
 * stale outcome can never overwrite the admin's replay or discard.
 *
 * Reclassification: intake stores an event whose type the mappings ignore
 * as 'ignored', outside every activity. When RevOps later moves that type to
 * `sync`, a replay of the call (single or bulk) makes those events 'pending'
 * so the fold takes them in (see reclassifyIgnored). The mappings decide
 * which types that is, so the caller passes them in.
 *
 * Lock order: a call row is locked before its events, and several calls in
 * (source, call_key) order, the order intake and completeSyncs use, so these
 * statements cannot deadlock with the worker or with intake.
 */

/** An event type of a source, as the mappings classify it. */
export interface EventTypeRef {
  source: SourceName;
  eventType: string;
}

/** A call as the replay needs it, with the events the fold reads. */
export interface ReplayCandidate {
  id: number;
  source: SourceName;
  callKey: string;
  status: SyncStatus;
  /** True while a worker holds an active lease on the call. */
  leased: boolean;
  events: StoredEvent[];
  /** Events stored as ignored: a replay folds (and makes pending) those whose type the current mappings sync. */
  ignored: StoredEvent[];
}

/**
 * The call and the events a replay would fold: every syncable event, the
 * discarded ones included because replay brings them back (loadEvents in
 * sync-store.ts, which the worker uses, leaves discarded events out), and
 * apart from them the ignored ones, which the caller reclassifies.
 */
export async function loadReplayCandidate(db: Queryable, id: number): Promise<ReplayCandidate | undefined> {
  const calls = await db.query<{ id: number; source: SourceName; call_key: string; status: SyncStatus; leased: boolean }>(
    `SELECT id, source, call_key, status, COALESCE(locked_until > now(), false) AS leased FROM call_syncs WHERE id = $1`,
    [id],
  );
  const call = calls[0];
  if (!call) return undefined;
  const rows = await db.query<EventRow & { event_status: string }>(
    `SELECT ${EVENT_COLUMNS}, e.status AS event_status
     FROM webhook_events e
     WHERE e.source = $1 AND e.call_key = $2 AND e.status IN ('pending', 'synced', 'failed', 'discarded', 'ignored')
     ORDER BY e.id`,
    [call.source, call.call_key],
  );
  return {
    id: call.id,
    source: call.source,
    callKey: call.call_key,
    status: call.status,
    leased: call.leased,
    events: rows.filter((r) => r.event_status !== 'ignored').map(toStoredEvent),
    ignored: rows.filter((r) => r.event_status === 'ignored').map(toStoredEvent),
  };
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
    `{${callIds.join(',')}}`,
    pgTextArray(types.map((t) => t.source)),
    pgTextArray(types.map((t) => t.eventType)),
  ]);
  return rows[0]?.events ?? 0;
}

/** The event types the given calls have stored as ignored (served by webhook_events_call). */
export async function ignoredTypes(db: Queryable, callIds: readonly number[]): Promise<EventTypeRef[]> {
  if (callIds.length === 0) return [];
  const rows = await db.query<{ source: SourceName; event_type: string }>(
    `SELECT DISTINCT e.source, e.event_type
     FROM call_syncs c JOIN webhook_events e ON e.source = c.source AND e.call_key = c.call_key
     WHERE c.id = ANY($1::bigint[]) AND e.status = 'ignored'`,
    [`{${callIds.join(',')}}`],
  );
  return rows.map((r) => ({ source: r.source, eventType: r.event_type }));
}

export type SingleOutcome =
  | { outcome: 'missing' }
  | { outcome: 'busy'; lockedBy: string | null; lockedUntil: Date }
  | { outcome: 'done'; previousStatus: SyncStatus; previousAttempts: number; events: number; reclassified: number };

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
WITH target AS (
  SELECT id, source, call_key, status, attempts, locked_by, locked_until,
         COALESCE(locked_until > now(), false) AS leased
  FROM call_syncs WHERE id = $1
  FOR UPDATE
),
replayed AS (
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
    locked_until = NULL,
    activity = COALESCE($2::jsonb, c.activity),
    updated_at = now()
  FROM target t
  WHERE c.id = t.id AND NOT t.leased
  RETURNING c.id, c.source, c.call_key
),
events AS (
  UPDATE webhook_events e SET status = 'pending', next_attempt_at = NULL
  FROM replayed r
  WHERE e.source = r.source AND e.call_key = r.call_key AND e.status IN ('failed', 'discarded')
  RETURNING 1
)
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
  const rows = await db.query<{
    status: SyncStatus;
    attempts: number;
    leased: boolean;
    locked_by: string | null;
    locked_until: Date | null;
    events: number;
  }>(REPLAY_ONE_SQL, [id, activity === null ? null : JSON.stringify(activity)]);
  const outcome = singleOutcome(rows[0]);
  if (outcome.outcome !== 'done') return outcome;
  return { ...outcome, reclassified: await reclassifyIgnored(db, [id], reclassify) };
}

export type DiscardOutcome = SingleOutcome | { outcome: 'synced' };

/**
 * Discards one call. A synced call is refused ('synced'): it is already in
 * the CRM, there is nothing left to discard. Same locking as replay.
 */
const DISCARD_ONE_SQL = `
WITH target AS (
  SELECT id, source, call_key, status, attempts, locked_by, locked_until,
         COALESCE(locked_until > now(), false) AS leased
  FROM call_syncs WHERE id = $1
  FOR UPDATE
),
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
  const rows = await db.query<{
    status: SyncStatus;
    attempts: number;
    leased: boolean;
    locked_by: string | null;
    locked_until: Date | null;
    events: number;
  }>(DISCARD_ONE_SQL, [id]);
  const row = rows[0];
  if (row && !row.leased && row.status === 'synced') return { outcome: 'synced' };
  return singleOutcome(row);
}

function singleOutcome(
  row: { status: SyncStatus; attempts: number; leased: boolean; locked_by: string | null; locked_until: Date | null; events: number } | undefined,
): SingleOutcome {
  if (!row) return { outcome: 'missing' };
  if (row.leased && row.locked_until) return { outcome: 'busy', lockedBy: row.locked_by, lockedUntil: row.locked_until };
  return { outcome: 'done', previousStatus: row.status, previousAttempts: row.attempts, events: row.events, reclassified: 0 };
}

/** Which calls a bulk replay takes: one status, optionally one source and a window on updated_at. */
export interface ReplayFilter {
  status: SyncStatus;
  source?: SourceName | undefined;
  /** updated_at >= since */
  since?: Date | undefined;
  /** updated_at < until */
  until?: Date | undefined;
}

function filterSql(filter: ReplayFilter, params: unknown[], alias = 'c'): string {
  const where: string[] = [];
  const add = (clause: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  add((p) => `${alias}.status = ${p}`, filter.status);
  if (filter.source !== undefined) add((p) => `${alias}.source = ${p}`, filter.source);
  if (filter.since !== undefined) add((p) => `${alias}.updated_at >= ${p}::timestamptz`, filter.since.toISOString());
  if (filter.until !== undefined) add((p) => `${alias}.updated_at < ${p}::timestamptz`, filter.until.toISOString());
  return where.join(' AND ');
}

export interface MatchSummary {
  /** Calls a replay would queue now. */
  count: number;
  /** Calls that match but are being synced right now (active lease); a replay would leave them alone. */
  skipped: number;
  /** The first matching calls (newest first), up to the sample limit. */
  sample: Array<{
    id: number;
    source: SourceName;
    callKey: string;
    status: SyncStatus;
    attempts: number;
    lastError: string | null;
    updatedAt: Date;
  }>;
}

/** What a bulk replay would do (dry run): counts and a capped sample, read-only. */
export async function matchReplay(db: Queryable, filter: ReplayFilter, sampleLimit: number): Promise<MatchSummary> {
  const params: unknown[] = [];
  const where = filterSql(filter, params);
  const counts = await db.query<{ count: number; skipped: number }>(
    `SELECT count(*) FILTER (WHERE NOT COALESCE(c.locked_until > now(), false))::int AS count,
            count(*) FILTER (WHERE COALESCE(c.locked_until > now(), false))::int AS skipped
     FROM call_syncs c WHERE ${where}`,
    params,
  );
  params.push(sampleLimit);
  const sample = await db.query<{
    id: number;
    source: SourceName;
    call_key: string;
    status: SyncStatus;
    attempts: number;
    last_error: string | null;
    updated_at: Date;
  }>(
    `SELECT c.id, c.source, c.call_key, c.status, c.attempts, c.last_error, c.updated_at
     FROM call_syncs c
     WHERE ${where} AND NOT COALESCE(c.locked_until > now(), false)
     ORDER BY c.updated_at DESC, c.id DESC
     LIMIT $${params.length}`,
    params,
  );
  return {
    count: counts[0]?.count ?? 0,
    skipped: counts[0]?.skipped ?? 0,
    sample: sample.map((r) => ({
      id: r.id,
      source: r.source,
      callKey: r.call_key,
      status: r.status,
      attempts: r.attempts,
      lastError: r.last_error,
      updatedAt: r.updated_at,
    })),
  };
}

/**
 * One batch of a bulk replay.
 *
 * Why this shape:
 * - Batches walk the table by id (id > $last), each its own short statement
 *   and transaction: thousands of calls never sit in one long transaction
 *   holding row locks the worker and intake need, and the walk ends even
 *   when replayed rows still match the filter (status 'pending').
 * - `batch` picks candidates without locks; `locked` then locks them in
 *   (source, call_key) order, the order intake's upsert and completeSyncs
 *   use, so we cannot deadlock with them (FOR UPDATE waits for their short
 *   statements instead of skipping the row).
 * - The UPDATE re-checks the filter's status and the lease on the row as it
 *   is once locked (READ COMMITTED re-evaluates it on the newest version): a
 *   call a worker claimed, or that changed status, since `batch` is left
 *   alone and counted as skipped.
 * - The NOTIFY is queued only when the batch replayed something and is
 *   delivered when it commits, so workers start on it at once.
 */
function replayBatchSql(where: string, statusParam: string, afterParam: string, limitParam: string): string {
  return `
WITH batch AS (
  SELECT c.id FROM call_syncs c
  WHERE ${where} AND c.id > ${afterParam}
  ORDER BY c.id
  LIMIT ${limitParam}
),
locked AS (
  SELECT c.id FROM call_syncs c JOIN batch b ON b.id = c.id
  ORDER BY c.source, c.call_key
  FOR UPDATE OF c
),
replayed AS (
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
    locked_until = NULL,
    updated_at = now()
  FROM locked l
  WHERE c.id = l.id AND c.status = ${statusParam} AND NOT COALESCE(c.locked_until > now(), false)
  RETURNING c.id, c.source, c.call_key
),
events AS (
  UPDATE webhook_events e SET status = 'pending', next_attempt_at = NULL
  FROM replayed r
  WHERE e.source = r.source AND e.call_key = r.call_key AND e.status IN ('failed', 'discarded')
  RETURNING 1
)
SELECT (SELECT max(id) FROM batch) AS last_id,
       (SELECT count(*) FROM batch)::int AS scanned,
       (SELECT count(*) FROM replayed)::int AS replayed,
       COALESCE((SELECT json_agg(id) FROM replayed), '[]'::json) AS replayed_ids,
       (SELECT count(*) FROM events)::int AS events,
       (SELECT pg_notify('${PENDING_CHANNEL}', '') FROM replayed LIMIT 1) IS NULL AS notified
`;
}

export interface BulkReplayResult {
  /** Calls queued. */
  count: number;
  /** Calls that matched but were being synced at that moment (or changed meanwhile), left alone. */
  skipped: number;
  /** Events brought back from failed/discarded to pending. */
  events: number;
  /** Ignored events of the replayed calls made pending because their type is now synced. */
  reclassified: number;
  batches: number;
}

export const DEFAULT_REPLAY_BATCH = 500;

export interface ReplayMatchingOptions {
  batchSize?: number;
  /** Which of the given ignored event types the current mappings sync; without it ignored events stay ignored. */
  reclassify?: (types: EventTypeRef[]) => EventTypeRef[];
  /**
   * Runs inside every batch's transaction, after its changes, with the
   * totals including it (`done` on the last one, which may have changed
   * nothing): an audit row written here commits with exactly that batch.
   */
  inBatch?: (tx: Queryable, progress: BulkReplayResult & { done: boolean }) => Promise<void>;
  /** Progress, after each batch has committed. */
  onBatch?: (progress: BulkReplayResult) => void;
}

/**
 * Queues every call matching the filter, batch by batch (see replayBatchSql),
 * each batch one short transaction: the replay statement, the
 * reclassification of its calls' ignored events, and `inBatch`. A failure
 * mid-way leaves the batches already committed replayed, and the error
 * carries their totals.
 */
export async function replayMatching(database: Database, filter: ReplayFilter, options: ReplayMatchingOptions = {}): Promise<BulkReplayResult> {
  const batchSize = options.batchSize ?? DEFAULT_REPLAY_BATCH;
  let result: BulkReplayResult = { count: 0, skipped: 0, events: 0, reclassified: 0, batches: 0 };
  let after = 0;
  for (;;) {
    const params: unknown[] = [];
    const where = filterSql(filter, params);
    // filterSql always binds the status first.
    const statusParam = '$1';
    params.push(after);
    const afterParam = `$${params.length}`;
    params.push(batchSize);
    const limitParam = `$${params.length}`;
    let batch: { next: BulkReplayResult; lastId: number | null; done: boolean };
    try {
      batch = await database.transaction(async (tx) => {
        const rows = await tx.query<{ last_id: number | null; scanned: number; replayed: number; replayed_ids: number[]; events: number }>(
          replayBatchSql(where, statusParam, afterParam, limitParam),
          params,
        );
        const row = rows[0];
        const scanned = row?.scanned ?? 0;
        let reclassified = 0;
        if (row && options.reclassify && row.replayed_ids.length > 0) {
          const types = options.reclassify(await ignoredTypes(tx, row.replayed_ids));
          reclassified = await reclassifyIgnored(tx, row.replayed_ids, types);
        }
        const next: BulkReplayResult =
          scanned === 0 || !row
            ? result
            : {
                count: result.count + row.replayed,
                skipped: result.skipped + (row.scanned - row.replayed),
                events: result.events + row.events,
                reclassified: result.reclassified + reclassified,
                batches: result.batches + 1,
              };
        const done = scanned < batchSize || row?.last_id === null || row?.last_id === undefined;
        await options.inBatch?.(tx, { ...next, done });
        return { next, lastId: row?.last_id ?? null, done };
      });
    } catch (err) {
      throw new BulkReplayError(result, err);
    }
    const changed = batch.next !== result;
    result = batch.next;
    if (changed) options.onBatch?.({ ...result });
    if (batch.done || batch.lastId === null) break;
    after = batch.lastId;
  }
  return result;
}

/** A bulk replay that failed part-way: `partial` says what was committed before the failure. */
export class BulkReplayError extends Error {
  constructor(
    readonly partial: BulkReplayResult,
    cause: unknown,
  ) {
    super(`bulk replay stopped after ${partial.count} calls: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'BulkReplayError';
  }
}
