import type { Queryable } from '../db/client';

/**
 * The outbox gauges, read at scrape time: they are facts about the shared
 * table, not about one process. depth: pending calls; events: the events
 * those calls received since their last sync (version - synced_version);
 * oldest: the oldest pending_since (null when nothing is pending).
 */
export async function readOutboxGauges(db: Queryable): Promise<{ depth: number; events: number; oldest: Date | null } | undefined> {
  const [row] = await db.query<{ depth: number; events: number; oldest: Date | null }>(
    `SELECT count(*)::int AS depth, COALESCE(sum(version - synced_version), 0)::int AS events, min(pending_since) AS oldest
         FROM call_syncs WHERE status = 'pending'`,
  );
  return row;
}
