import type { Queryable } from '../db/client';
import type { CallSyncRow } from '../db/rows';
import type { callSyncs } from '../db/schema';
import type { SourceName } from '../core/event';
import { filterConditions, type ReplayFilter } from './sync-filter';

export interface MatchSummary {
  /** Calls a replay would queue now. */
  count: number;
  /** Calls that match but are being synced right now (active lease); a replay would leave them alone. */
  skipped: number;
  /** The first matching calls (newest first), up to the sample limit. */
  sample: Array<Pick<typeof callSyncs.$inferSelect, 'id' | 'callKey' | 'status' | 'attempts' | 'lastError' | 'updatedAt'> & { source: SourceName }>;
}

/**
 * What a bulk replay would do (dry run): counts and a capped sample,
 * read-only and without locks. The same filterConditions as the replay, so
 * the dry run and the replay pick the same calls; an active lease counts as
 * skipped, as the replay would leave it.
 */
export async function matchReplay(db: Queryable, filter: ReplayFilter, sampleLimit: number): Promise<MatchSummary> {
  const params: unknown[] = [];
  const where = filterConditions(filter, params).join(' AND ');
  const counts = await db.query<{ count: number; skipped: number }>(
    `SELECT count(*) FILTER (WHERE NOT COALESCE(c.locked_until > now(), false))::int AS count,
            count(*) FILTER (WHERE COALESCE(c.locked_until > now(), false))::int AS skipped
     FROM call_syncs c WHERE ${where}`,
    params,
  );
  params.push(sampleLimit);
  const sample = await db.query<Pick<CallSyncRow, 'id' | 'call_key' | 'status' | 'attempts' | 'last_error' | 'updated_at'> & { source: SourceName }>(
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
