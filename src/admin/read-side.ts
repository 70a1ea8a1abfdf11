import type { Queryable } from '../db/client';
import { SYNC_STATUSES, type SyncStatus } from '../db/schema';
import { AppError } from '../core/errors';
import { listSyncRows, type ListFilter, type SyncSummaryRow } from '../outbox/list-syncs';
import { countCallsBySourceAndStatus } from '../outbox/status-counts';
import { loadEventRow, loadSyncDetailRows, type DetailEventRow } from '../outbox/sync-detail';
import type { AttemptView, EventView, Summary, SyncSummary } from './schemas';

/**
 * The admin's read side: the outbox's rows (src/outbox/list-syncs.ts,
 * sync-detail.ts, status-counts.ts) shaped for the API and the page.
 */

export type SyncFilter = ListFilter;

interface Cursor {
  /** updated_at of the last row, to the microsecond, as UTC ISO text. */
  at: string;
  id: number;
}

const CURSOR_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.id]), 'utf8').toString('base64url');
}

export function decodeCursor(text: string): Cursor {
  const bad = () => new AppError('validation_failed', 'cursor: is not a cursor this server issued; pass the nextCursor of a previous page');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw bad();
  }
  if (!Array.isArray(value) || value.length !== 2) throw bad();
  const [at, id] = value as [unknown, unknown];
  if (typeof at !== 'string' || !CURSOR_TIME.test(at) || typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw bad();
  // The shape alone lets through 2025-02-30 or year 0000, which Postgres refuses (a 500): the time must name a real instant.
  const instant = new Date(`${at.slice(0, 23)}Z`);
  if (Number.isNaN(instant.getTime()) || instant.toISOString().slice(0, 23) !== at.slice(0, 23) || instant.getUTCFullYear() < 1970) throw bad();
  return { at, id };
}

function toSummary(r: SyncSummaryRow): SyncSummary {
  return {
    id: r.id,
    source: r.source,
    callKey: r.call_key,
    externalId: `${r.source}:${r.call_key}`,
    target: r.target,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    lastErrorKind: r.last_error_kind,
    lastHttpStatus: r.last_http_status,
    crmId: r.crm_id,
    crmFollowupId: r.crm_followup_id,
    nextAttemptAt: r.next_attempt_at.toISOString(),
    leasedUntil: r.leased_until?.toISOString() ?? null,
    firstEventAt: r.first_event_at.toISOString(),
    lastEventAt: r.last_event_at.toISOString(),
    updatedAt: r.updated_at.toISOString(),
    syncedAt: r.synced_at?.toISOString() ?? null,
  };
}

/** A page of syncs, newest change first (see listSyncRows); the cursor is the last row's (updated_at, id). */
export async function listSyncs(
  db: Queryable,
  filter: SyncFilter,
  page: { cursor?: string | undefined; limit: number },
): Promise<{ items: SyncSummary[]; nextCursor: string | null }> {
  const after = page.cursor === undefined ? undefined : decodeCursor(page.cursor);
  const { rows, more } = await listSyncRows(db, filter, { after, limit: page.limit });
  const last = rows[rows.length - 1];
  return {
    items: rows.map(toSummary),
    nextCursor: more && last ? encodeCursor({ at: last.cursor_at, id: last.id }) : null,
  };
}

export const DETAIL_EVENT_LIMIT = 500;
export const DETAIL_ATTEMPT_LIMIT = 200;

export interface SyncRecord {
  summary: SyncSummary;
  version: number;
  lockedBy: string | null;
  lastResponse: unknown;
  activity: unknown;
  crmPayload: unknown;
  events: EventView[];
  eventsTruncated: boolean;
  attempts: AttemptView[];
  attemptsTruncated: boolean;
}

function toEvent(r: DetailEventRow): EventView {
  return {
    id: r.id,
    source: r.source,
    eventType: r.event_type,
    dedupeKey: r.dedupe_key,
    callKey: r.call_key,
    status: r.status,
    receivedAt: r.received_at.toISOString(),
    vendorTime: r.vendor_time?.toISOString() ?? null,
    vendorTimeRaw: r.vendor_time_raw,
    attempts: r.attempts,
    lastError: r.last_error,
    headers: r.headers,
    payload: r.payload,
    rawBody: r.raw_body,
  };
}

/** One call with all its events and attempt history, or undefined. */
export async function loadSync(db: Queryable, id: number): Promise<SyncRecord | undefined> {
  const found = await loadSyncDetailRows(db, id, { events: DETAIL_EVENT_LIMIT + 1, attempts: DETAIL_ATTEMPT_LIMIT + 1 });
  if (!found) return undefined;
  const { call: row, events, attempts } = found;
  return {
    summary: toSummary(row),
    version: row.version,
    lockedBy: row.leased_until ? row.locked_by : null,
    lastResponse: row.last_response,
    activity: row.activity,
    crmPayload: row.crm_payload,
    events: events.slice(0, DETAIL_EVENT_LIMIT).map(toEvent),
    eventsTruncated: events.length > DETAIL_EVENT_LIMIT,
    attempts: attempts.slice(0, DETAIL_ATTEMPT_LIMIT).map((a) => ({
      attempt: a.attempt,
      target: a.target,
      workerId: a.worker_id,
      startedAt: a.started_at.toISOString(),
      finishedAt: a.finished_at.toISOString(),
      outcome: a.outcome,
      errorKind: a.error_kind,
      error: a.error,
      httpStatus: a.http_status,
      crmResponse: a.crm_response,
    })),
    attemptsTruncated: attempts.length > DETAIL_ATTEMPT_LIMIT,
  };
}

export async function loadEvent(db: Queryable, id: number): Promise<(EventView & { syncId: number | null }) | undefined> {
  const row = await loadEventRow(db, id);
  return row ? { ...toEvent(row), syncId: row.sync_id } : undefined;
}

/** Counts by status and by source; one pass over call_syncs. */
export async function loadSummary(db: Queryable): Promise<Summary> {
  const rows = await countCallsBySourceAndStatus(db);
  const zero = () => ({ pending: 0, synced: 0, failed: 0, discarded: 0 });
  const byStatus = zero();
  const bySource = new Map<string, ReturnType<typeof zero> & { total: number }>();
  let total = 0;
  for (const r of rows) {
    if (!(SYNC_STATUSES as readonly string[]).includes(r.status)) continue;
    const status = r.status as SyncStatus;
    byStatus[status] += r.n;
    total += r.n;
    let entry = bySource.get(r.source);
    if (!entry) bySource.set(r.source, (entry = { ...zero(), total: 0 }));
    entry[status] += r.n;
    entry.total += r.n;
  }
  return { total, byStatus, bySource: [...bySource.entries()].map(([source, counts]) => ({ source, ...counts })) };
}
