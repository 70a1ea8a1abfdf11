import type { SyncStatus } from '../db/schema';
import type { SourceName } from '../core/event';

/** Which calls: optionally one status, one source, and a window on updated_at. */
export interface SyncFilter {
  status?: SyncStatus | undefined;
  source?: string | undefined;
  /** updated_at >= since */
  since?: Date | undefined;
  /** updated_at < until */
  until?: Date | undefined;
}

/** Which calls a bulk replay takes: one status, optionally one source and a window on updated_at. */
export type ReplayFilter = SyncFilter & { status: SyncStatus; source?: SourceName | undefined };

/**
 * The filter as SQL conditions on call_syncs (alias `alias`), one per field
 * given, joined by the caller. Values are bound, never spliced: each one is
 * pushed to `params` (status, source, since, until, in that order) and named
 * by its placeholder. The admin's list and the bulk replay share it, so the
 * same filter always picks the same calls.
 */
export function filterConditions(filter: SyncFilter, params: unknown[], alias = 'c'): string[] {
  const where: string[] = [];
  const add = (clause: (placeholder: string) => string, value: unknown) => {
    params.push(value);
    where.push(clause(`$${params.length}`));
  };
  if (filter.status !== undefined) add((p) => `${alias}.status = ${p}`, filter.status);
  if (filter.source !== undefined) add((p) => `${alias}.source = ${p}`, filter.source);
  if (filter.since !== undefined) add((p) => `${alias}.updated_at >= ${p}::timestamptz`, filter.since.toISOString());
  if (filter.until !== undefined) add((p) => `${alias}.updated_at < ${p}::timestamptz`, filter.until.toISOString());
  return where;
}
