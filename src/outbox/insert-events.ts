import type { Queryable } from '../db/client';
import type { WebhookEventRow } from '../db/rows';
import type { EventStatus, webhookEvents } from '../db/schema';
import { PENDING_CHANNEL } from './pending-channel';
import { needsJsonbRepair, pgTextArray, repairJsonText, storableText } from './pg-text';

/** One webhook ready to be written to the outbox: webhook_events' columns as intake fills them. */
export type NewEvent = Pick<
  typeof webhookEvents.$inferSelect,
  'source' | 'eventType' | 'dedupeKey' | 'callKey' | 'vendorTime' | 'vendorTimeRaw' | 'receivedAt' | 'rawBody' | 'headers'
> & {
  payload: Record<string, unknown>;
  /** 'pending' to sync, 'ignored' to keep without syncing. */
  status: Extract<EventStatus, 'pending' | 'ignored'>;
};

/**
 * Writes a batch of webhooks in ONE statement, so one round trip and one
 * commit (one WAL flush) serve every request in the batch; that commit is
 * what bounds a receiver doing one INSERT per request.
 *
 * - Input columns travel as one array parameter each (unnest): the same on
 *   postgres.js and PGlite, no parameter-count limit, and cheap to parse.
 *   The payload is parsed from raw_body by Postgres itself (raw_body::jsonb),
 *   so each body crosses the wire and is parsed once; only bodies needing
 *   repair (see repairJsonText) send a repaired copy. Measured: about half the
 *   database CPU per row of a json_to_recordset envelope.
 * - Rows are inserted in (source, dedupe_key) order and calls upserted in
 *   (source, call_key) order: concurrent batches then take their locks in
 *   the same order and cannot deadlock each other.
 * - ON CONFLICT DO NOTHING on (source, dedupe_key) makes a re-delivery a
 *   no-op; RETURNING tells which rows were new, and for the others an index
 *   probe in the same statement confirms the key is already stored (see
 *   IngestQueue.confirmDuplicates for the rare case it cannot).
 * - Each new syncable event bumps its call's `version` and makes the call
 *   due (a call in retry backoff keeps its schedule; a failed or discarded
 *   call gets a fresh retry budget, since new information may fix it).
 *   updated_at is left alone so the update stays HOT (no index changes).
 * - pg_notify is queued inside the same statement, so workers wake exactly
 *   when the batch commits. (A scalar subquery is an init-plan: evaluated
 *   once, and only if a row is returned.)
 */
const INSERT_BATCH_SQL = `
WITH input AS (
  SELECT * FROM unnest(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::text[],
    $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[]
  ) AS x(source, event_type, dedupe_key, call_key, vendor_time, vendor_time_raw,
         received_at, raw_body, repaired_payload, headers, status)
),
inserted AS (
  INSERT INTO webhook_events
    (source, event_type, dedupe_key, call_key, vendor_time, vendor_time_raw, received_at, raw_body, payload, headers, status)
  SELECT source, event_type, dedupe_key, call_key, vendor_time, vendor_time_raw, received_at, raw_body,
         COALESCE(repaired_payload, raw_body)::jsonb, headers::jsonb, status
  FROM input
  ORDER BY source, dedupe_key
  ON CONFLICT (source, dedupe_key) DO NOTHING
  RETURNING source, dedupe_key, call_key, status, received_at
),
touched AS (
  INSERT INTO call_syncs AS c (source, call_key, status, version, next_attempt_at, pending_since, first_event_at, last_event_at)
  SELECT source, call_key, 'pending', count(*), now(), min(received_at), min(received_at), max(received_at)
  FROM inserted
  WHERE status = 'pending'
  GROUP BY source, call_key
  ORDER BY source, call_key
  ON CONFLICT (source, call_key) DO UPDATE SET
    version = c.version + excluded.version,
    status = 'pending',
    attempts = CASE WHEN c.status IN ('failed', 'discarded') THEN 0 ELSE c.attempts END,
    next_attempt_at = CASE WHEN c.status = 'pending' THEN c.next_attempt_at ELSE now() END,
    pending_since = CASE WHEN c.status = 'pending' THEN c.pending_since ELSE excluded.pending_since END,
    last_event_at = GREATEST(c.last_event_at, excluded.last_event_at)
  RETURNING 1
)
SELECT i.source, i.dedupe_key, ins.dedupe_key IS NOT NULL AS stored,
       -- A scalar subquery with LIMIT, not EXISTS: the planner may turn an
       -- EXISTS into a hashed subplan that reads the whole table per batch.
       CASE WHEN ins.dedupe_key IS NULL THEN (
         SELECT true FROM webhook_events e WHERE e.source = i.source AND e.dedupe_key = i.dedupe_key LIMIT 1
       ) END AS present,
       (SELECT pg_notify('${PENDING_CHANNEL}', '') FROM touched LIMIT 1) IS NULL AS notified
FROM input i
LEFT JOIN inserted ins ON ins.source = i.source AND ins.dedupe_key = i.dedupe_key
`;

/** One webhook as the insert statement's column values (see INSERT_BATCH_SQL). */
export type InsertRow = [
  source: string,
  eventType: string,
  dedupeKey: string,
  callKey: string,
  vendorTime: string | null,
  vendorTimeRaw: string | null,
  receivedAt: string,
  rawBody: string,
  repairedPayload: string | null,
  headers: string,
  status: string,
];

export function toInsertRow(e: NewEvent): InsertRow {
  const needsRepair = needsJsonbRepair(e.rawBody);
  const clean = needsRepair ? storableText : (v: string) => v;
  return [
    e.source,
    clean(e.eventType),
    clean(e.dedupeKey),
    clean(e.callKey),
    e.vendorTime?.toISOString() ?? null,
    e.vendorTimeRaw === null ? null : clean(e.vendorTimeRaw),
    e.receivedAt.toISOString(),
    e.rawBody,
    needsRepair ? repairJsonText(e.rawBody) : null,
    JSON.stringify(e.headers),
    e.status,
  ];
}

/** What the statements answer per row: its unique key. */
type KeyRow = Pick<WebhookEventRow, 'source' | 'dedupe_key'>;

/** An event's unique key (source, dedupe key) as one string, to match rows with the statements' answers. */
function eventKey(source: string, dedupeKey: string): string {
  return `${source}\u0000${dedupeKey}`;
}

export function insertKey(row: InsertRow): string {
  return eventKey(row[0], row[2]);
}

/**
 * Runs INSERT_BATCH_SQL (prepared: it is intake's hottest statement) and
 * answers the keys it stored, and the keys it stored or found present.
 */
export async function insertEventBatch(db: Queryable, rows: InsertRow[]): Promise<{ stored: Set<string>; known: Set<string> }> {
  const params = rows[0]?.map((_, column) => pgTextArray(rows.map((row) => row[column] ?? null))) ?? [];
  const result = await db.query<KeyRow & { stored: boolean; present: boolean | null }>(INSERT_BATCH_SQL, params, { prepare: true });
  const stored = new Set<string>();
  const known = new Set<string>();
  for (const r of result) {
    const key = eventKey(r.source, r.dedupe_key);
    if (r.stored) stored.add(key);
    if (r.stored || r.present) known.add(key);
  }
  return { stored, known };
}

/** Which of the rows' keys the table holds now (a fresh snapshot), as insertKey spells them. */
export async function findStoredKeys(db: Queryable, rows: InsertRow[]): Promise<Set<string>> {
  const found = await db.query<KeyRow>(
    `SELECT e.source, e.dedupe_key FROM webhook_events e
       JOIN unnest($1::text[], $2::text[]) AS k(source, dedupe_key) ON e.source = k.source AND e.dedupe_key = k.dedupe_key`,
    [pgTextArray(rows.map((r) => r[0])), pgTextArray(rows.map((r) => r[2]))],
  );
  return new Set(found.map((r) => eventKey(r.source, r.dedupe_key)));
}
