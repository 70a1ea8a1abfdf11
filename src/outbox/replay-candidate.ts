import type { Queryable } from '../db/client';
import type { CallSyncRow } from '../db/rows';
import type { SyncStatus } from '../db/schema';
import type { StoredEvent } from '../core/event';
import type { SourceName } from '../core/event';
import { EVENT_COLUMNS, toStoredEvent, type EventRow } from './stored-event-row';

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
 * discarded ones included because replay brings them back (the
 * worker's claim, claim-calls.ts, leaves discarded events out), and
 * apart from them the ignored ones, which the caller reclassifies.
 */
export async function loadReplayCandidate(db: Queryable, id: number): Promise<ReplayCandidate | undefined> {
  const calls = await db.query<Pick<CallSyncRow, 'id' | 'call_key' | 'status'> & { source: SourceName; leased: boolean }>(
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
