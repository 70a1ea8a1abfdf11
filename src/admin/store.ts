import type { Queryable } from '../db/client';
import { SYNC_STATUSES, type SyncStatus } from '../db/schema';
import { AppError } from '../core/errors';
import type { AttemptView, EventView, Summary, SyncSummary } from './schemas';

/**
 * The admin's read side: raw SQL over call_syncs, webhook_events and
 * sync_attempts, shaped for the API and the page.
 */

export interface SyncFilter {
  status?: SyncStatus | undefined;
  source?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  q?: string | undefined;
}

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

/** Escapes LIKE wildcards so a search for "50%" finds "50%", not everything. */
function likePattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

type SyncRow = {
  id: number;
  source: string;
  call_key: string;
  target: string | null;
  status: SyncStatus;
  attempts: number;
  last_error: string | null;
  last_error_kind: string | null;
  last_http_status: number | null;
  crm_id: string | null;
  crm_followup_id: string | null;
  next_attempt_at: Date;
  leased_until: Date | null;
  first_event_at: Date;
  last_event_at: Date;
  updated_at: Date;
  synced_at: Date | null;
}

const SUMMARY_COLUMNS = `c.id, c.source, c.call_key, c.target, c.status, c.attempts, c.last_error, c.last_error_kind,
  c.last_http_status, c.crm_id, c.crm_followup_id, c.next_attempt_at,
  CASE WHEN c.locked_until > now() THEN c.locked_until END AS leased_until,
  c.first_event_at, c.last_event_at, c.updated_at, c.synced_at`;

function toSummary(r: SyncRow): SyncSummary {
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

/**
 * A page of syncs, newest change first.
 *
 * Keyset pagination on (updated_at, id): the cursor is the last row's key,
 * so a page costs the same at any depth and rows inserted meanwhile do not
 * shift the next page. updated_at travels at full microsecond precision (a
 * JS Date would round it to milliseconds and could skip or repeat rows).
 * With a status filter the (status, updated_at, id) index serves the order.
 */
export async function listSyncs(
  db: Queryable,
  filter: SyncFilter,
  page: { cursor?: string | undefined; limit: number },
): Promise<{ items: SyncSummary[]; nextCursor: string | null }> {
  const params: unknown[] = [];
  const where: string[] = [];
  const bind = (value: unknown) => {
    params.push(value);
    return `$${params.length}`;
  };
  if (filter.status !== undefined) where.push(`c.status = ${bind(filter.status)}`);
  if (filter.source !== undefined) where.push(`c.source = ${bind(filter.source)}`);
  if (filter.since !== undefined) where.push(`c.updated_at >= ${bind(filter.since.toISOString())}::timestamptz`);
  if (filter.until !== undefined) where.push(`c.updated_at < ${bind(filter.until.toISOString())}::timestamptz`);
  if (filter.q !== undefined) {
    const pattern = bind(likePattern(filter.q));
    const exact = bind(filter.q);
    where.push(
      `(c.call_key ILIKE ${pattern} OR (c.source || ':' || c.call_key) ILIKE ${pattern} OR c.last_error ILIKE ${pattern} OR c.crm_id = ${exact})`,
    );
  }
  if (page.cursor !== undefined) {
    const cursor = decodeCursor(page.cursor);
    where.push(`(c.updated_at, c.id) < (${bind(cursor.at)}::timestamptz, ${bind(cursor.id)}::bigint)`);
  }
  const limit = bind(page.limit + 1);
  const rows = await db.query<SyncRow & { cursor_at: string }>(
    `SELECT ${SUMMARY_COLUMNS},
            to_char(c.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS cursor_at
     FROM call_syncs c
     ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY c.updated_at DESC, c.id DESC
     LIMIT ${limit}`,
    params,
  );
  const more = rows.length > page.limit;
  const shown = more ? rows.slice(0, page.limit) : rows;
  const last = shown[shown.length - 1];
  return {
    items: shown.map(toSummary),
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

type EventRow = {
  id: number;
  source: string;
  event_type: string;
  dedupe_key: string;
  call_key: string;
  status: string;
  received_at: Date;
  vendor_time: Date | null;
  vendor_time_raw: string | null;
  attempts: number;
  last_error: string | null;
  headers: Record<string, string>;
  payload: unknown;
  raw_body: string;
}

const EVENT_COLUMNS = `e.id, e.source, e.event_type, e.dedupe_key, e.call_key, e.status, e.received_at, e.vendor_time,
  e.vendor_time_raw, e.attempts, e.last_error, e.headers, e.payload, e.raw_body`;

function toEvent(r: EventRow): EventView {
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
  const rows = await db.query<SyncRow & { version: number; locked_by: string | null; last_response: unknown; activity: unknown; crm_payload: unknown }>(
    `SELECT ${SUMMARY_COLUMNS}, c.version, c.locked_by, c.last_response, c.activity, c.crm_payload
     FROM call_syncs c WHERE c.id = $1`,
    [id],
  );
  const row = rows[0];
  if (!row) return undefined;
  const [events, attempts] = await Promise.all([
    db.query<EventRow>(
      `SELECT ${EVENT_COLUMNS} FROM webhook_events e WHERE e.source = $1 AND e.call_key = $2 ORDER BY e.id LIMIT $3`,
      [row.source, row.call_key, DETAIL_EVENT_LIMIT + 1],
    ),
    db.query<{
      attempt: number;
      target: string;
      worker_id: string;
      started_at: Date;
      finished_at: Date;
      outcome: string;
      error_kind: string | null;
      error: string | null;
      http_status: number | null;
      crm_response: unknown;
    }>(
      `SELECT attempt, target, worker_id, started_at, finished_at, outcome, error_kind, error, http_status, crm_response
       FROM sync_attempts WHERE call_sync_id = $1 ORDER BY id DESC LIMIT $2`,
      [id, DETAIL_ATTEMPT_LIMIT + 1],
    ),
  ]);
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
  const rows = await db.query<EventRow & { sync_id: number | null }>(
    `SELECT ${EVENT_COLUMNS}, c.id AS sync_id
     FROM webhook_events e LEFT JOIN call_syncs c ON c.source = e.source AND c.call_key = e.call_key
     WHERE e.id = $1`,
    [id],
  );
  const row = rows[0];
  return row ? { ...toEvent(row), syncId: row.sync_id } : undefined;
}

/** Counts by status and by source; one pass over call_syncs. */
export async function loadSummary(db: Queryable): Promise<Summary> {
  const rows = await db.query<{ source: string; status: string; n: number }>(
    `SELECT source, status, count(*)::int AS n FROM call_syncs GROUP BY source, status ORDER BY source`,
  );
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
