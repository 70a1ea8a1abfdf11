import type { Queryable } from '../db/client';
import type { CallSyncRow } from '../db/rows';
import type { callSyncs } from '../db/schema';
import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import { pgIdArray } from './pg-text';
import { releaseClaims } from './release-claims';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './stored-event-row';

/**
 * A call the worker has leased. `version` is the event count seen at claim
 * time (see completeSyncs); `target` is the target the stored CRM ids belong
 * to (the last one that wrote the call).
 */
export type ClaimedCall = Pick<
  typeof callSyncs.$inferSelect,
  'id' | 'callKey' | 'version' | 'attempts' | 'target' | 'crmId' | 'crmFollowupId' | 'lastEventAt'
> & { source: SourceName };

/** What CLAIM_SQL returns for each call. */
type ClaimRow = Pick<CallSyncRow, 'id' | 'call_key' | 'version' | 'attempts' | 'target' | 'crm_id' | 'crm_followup_id' | 'last_event_at'> & {
  source: SourceName;
};

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
  const calls = await db.query<ClaimRow>(CLAIM_SQL, [options.token, options.leaseSeconds, options.limit], { prepare: true });
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
  const ids = pgIdArray(calls.map((c) => c.id));
  let rows: Array<EventRow & { call_id: number }>;
  try {
    rows = await db.query<EventRow & { call_id: number }>(CLAIMED_EVENTS_SQL, [ids], { prepare: true });
  } catch (err) {
    // Give the claim back rather than leave the calls leased for a whole
    // lease. (Not one transaction with the claim: that would hold the call
    // rows locked, and intake waiting on them, while the events are read.)
    await releaseClaims(db, ids, options.token).catch(() => {});
    throw err;
  }
  for (const r of rows) byId.get(r.call_id)?.push(toStoredEvent(r));
  return batch;
}
