import type { Database, Queryable } from '../db/client';
import { PENDING_CHANNEL } from './pending-channel';
import { ignoredTypes, reclassifyIgnored, type EventTypeRef } from './reclassify-ignored';
import { resetToPendingSql } from './reset-to-pending';
import { filterConditions, type ReplayFilter } from './sync-filter';

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
${resetToPendingSql({ from: 'locked l', where: `c.id = l.id AND c.status = ${statusParam} AND NOT COALESCE(c.locked_until > now(), false)` })}
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
    const where = filterConditions(filter, params).join(' AND ');
    // filterConditions binds the status first (a replay filter always has one).
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
