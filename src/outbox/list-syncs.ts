import type { Queryable } from '../db/client';
import type { CallSyncRow } from '../db/rows';
import { filterConditions, type SyncFilter } from './sync-filter';

/** The admin's list filter: a SyncFilter plus a free-text search. */
export type ListFilter = SyncFilter & { q?: string | undefined };

/** A call_syncs row as the admin's list and detail read it; leased_until only while the lease is active. */
export type SyncSummaryRow = Pick<
  CallSyncRow,
  | 'id'
  | 'source'
  | 'call_key'
  | 'target'
  | 'status'
  | 'attempts'
  | 'last_error'
  | 'last_error_kind'
  | 'last_http_status'
  | 'crm_id'
  | 'crm_followup_id'
  | 'next_attempt_at'
  | 'first_event_at'
  | 'last_event_at'
  | 'updated_at'
  | 'synced_at'
> & { leased_until: Date | null };

export const SUMMARY_COLUMNS = `c.id, c.source, c.call_key, c.target, c.status, c.attempts, c.last_error, c.last_error_kind,
  c.last_http_status, c.crm_id, c.crm_followup_id, c.next_attempt_at,
  CASE WHEN c.locked_until > now() THEN c.locked_until END AS leased_until,
  c.first_event_at, c.last_event_at, c.updated_at, c.synced_at`;

/** Escapes LIKE wildcards so a search for "50%" finds "50%", not everything. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

/**
 * A page of calls, newest change first, and whether more follow.
 *
 * Keyset pagination on (updated_at, id): `after` is the last row's key, so a
 * page costs the same at any depth and rows inserted meanwhile do not shift
 * the next page. updated_at travels at full microsecond precision
 * (cursor_at: a JS Date would round it to milliseconds and could skip or
 * repeat rows). With a status filter the (status, updated_at, id) index
 * serves the order. One row more than the page tells whether more follow.
 */
export async function listSyncRows(
  db: Queryable,
  filter: ListFilter,
  page: { after?: { at: string; id: number } | undefined; limit: number },
): Promise<{ rows: Array<SyncSummaryRow & { cursor_at: string }>; more: boolean }> {
  const params: unknown[] = [];
  const where = filterConditions(filter, params);
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.q !== undefined) {
    const pattern = bind(likePattern(filter.q));
    const exact = bind(filter.q);
    where.push(
      `(c.call_key ILIKE ${pattern} OR (c.source || ':' || c.call_key) ILIKE ${pattern} OR c.last_error ILIKE ${pattern} OR c.crm_id = ${exact})`,
    );
  }
  if (page.after !== undefined) {
    where.push(`(c.updated_at, c.id) < (${bind(page.after.at)}::timestamptz, ${bind(page.after.id)}::bigint)`);
  }
  const limit = bind(page.limit + 1);
  const rows = await db.query<SyncSummaryRow & { cursor_at: string }>(
    `SELECT ${SUMMARY_COLUMNS},
            to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
     FROM call_syncs c
     ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY c.updated_at DESC, c.id DESC
     LIMIT ${limit}`,
    params,
  );
  const more = rows.length > page.limit;
  return { rows: more ? rows.slice(0, page.limit) : rows, more };
}
