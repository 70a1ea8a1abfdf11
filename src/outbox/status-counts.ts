import type { Queryable } from '../db/client';

/**
 * Calls by source and status, for the admin's summary: one pass over
 * call_syncs (a GROUP BY, no index needed at the sizes retention keeps).
 */
export async function countCallsBySourceAndStatus(db: Queryable): Promise<Array<{ source: string; status: string; n: number }>> {
  return db.query<{ source: string; status: string; n: number }>(
    `SELECT source, status, count(*)::int AS n FROM call_syncs GROUP BY source, status ORDER BY source`,
  );
}
