import type { Queryable } from '../db/client';

/**
 * Gives a claim back: the calls' leases end now, so any worker can claim
 * them again at once instead of after a whole lease. Only leases still held
 * under `token` are touched (another claim may own the call by now).
 * `ids` is a Postgres bigint array literal ('{1,2,3}'), as the claim built it.
 */
export async function releaseClaims(db: Queryable, ids: string, token: string): Promise<void> {
  await db.query(`UPDATE call_syncs SET locked_by = NULL, locked_until = NULL WHERE id = ANY($1::bigint[]) AND locked_by = $2`, [ids, token]);
}
