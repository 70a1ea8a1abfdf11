import type { Queryable } from '../db/client';
import { pgIdArray } from './pg-text';

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
    [token, pgIdArray(ids), leaseSeconds],
  );
  return new Set(rows.map((r) => r.id));
}
