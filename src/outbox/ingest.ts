import type { Database } from '../db/client';
import { classifyDbError, type DbFailure } from '../db/errors';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';

/** One webhook ready to be written to the outbox. */
export interface NewEvent {
  source: string;
  eventType: string;
  dedupeKey: string;
  callKey: string;
  vendorTime: Date | null;
  vendorTimeRaw: string | null;
  receivedAt: Date;
  rawBody: string;
  payload: Record<string, unknown>;
  headers: Record<string, string>;
  /** 'pending' to sync, 'ignored' to keep without syncing. */
  status: 'pending' | 'ignored';
}

export type IngestOutcome = 'stored' | 'duplicate';

export class IngestError extends Error {
  constructor(
    readonly failure: DbFailure,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'IngestError';
  }
}

const SWEEP_EVERY_MS = 250;

/** The channel workers LISTEN on; intake notifies it when a call becomes due. */
export const PENDING_CHANNEL = 'callsync_pending';

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
 *   confirmDuplicates for the rare case it cannot).
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
type InsertRow = [
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

interface Waiter {
  row: InsertRow;
  /** source + dedupe key, to match RETURNING rows. */
  key: string;
  /** Bytes this request holds while it waits (its body, twice when repaired). */
  bytes: number;
  /** performance.now() past which the request is answered 503 rather than kept waiting. */
  deadline: number;
  resolve: (outcome: IngestOutcome) => void;
  reject: (err: IngestError) => void;
}

export interface IngestOptions {
  /** Most webhooks per statement. */
  maxBatch: number;
  /** Statements in flight at once; requests arriving meanwhile form the next batch. */
  maxInFlight: number;
  /** A request not committed this long after it arrived is answered 503 (the vendor retries). */
  timeoutMs: number;
  /** Most requests waiting for a batch; past it a request is refused at once (503). */
  maxQueued?: number;
  /** Most body bytes waiting for a batch; past it a request is refused at once (503). */
  maxQueuedBytes?: number;
}

/**
 * While the database is slow or out of reach, requests would otherwise pile
 * up without limit, each holding its body: the queue is bounded in count and
 * bytes, and a request waits at most `timeoutMs` in all. Past either bound
 * the vendor gets its 503 at once and retries later, and memory stays flat
 * through an outage.
 */
const DEFAULT_MAX_QUEUED = 10_000;
const DEFAULT_MAX_QUEUED_BYTES = 64 * 1024 * 1024;

/**
 * Gathers the inserts of concurrent webhook requests into batches. A request
 * resolves only after its batch has committed: a 200 to the vendor always
 * means the event is durable.
 */
export class IngestQueue {
  private queue: Waiter[] = [];
  private queuedBytes = 0;
  private inFlight = 0;
  private scheduled = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly database: Database,
    private readonly options: IngestOptions,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
  ) {}

  submit(event: NewEvent): Promise<IngestOutcome> {
    // Only strings wait for the batch: the parsed payload is garbage at once
    // instead of surviving into the old generation while the batch forms.
    let row: InsertRow;
    try {
      row = toInsertRow(event);
    } catch (err) {
      return Promise.reject(new IngestError('data', messageOf(err), { cause: err }));
    }
    const bytes = row[7].length + (row[8]?.length ?? 0);
    // An empty queue always takes a request: a body bigger than the byte
    // bound alone must not be refused forever.
    const full =
      this.queue.length >= (this.options.maxQueued ?? DEFAULT_MAX_QUEUED) ||
      (this.queue.length > 0 && this.queuedBytes + bytes > (this.options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES));
    if (full) {
      return Promise.reject(new IngestError('unavailable', 'too many webhooks are waiting for the database'));
    }
    return new Promise<IngestOutcome>((resolve, reject) => {
      this.queue.push({ row, key: `${row[0]}\u0000${row[2]}`, bytes, deadline: performance.now() + this.options.timeoutMs, resolve, reject });
      this.queuedBytes += bytes;
      this.schedule();
      this.sweepTimer ??= setInterval(() => this.sweepExpired(), SWEEP_EVERY_MS).unref();
    });
  }

  /**
   * Answers 503 to the requests that waited their whole `timeoutMs` for a
   * batch without one starting (the statements in flight are stuck): the
   * vendor retries rather than waits on an open connection.
   */
  private sweepExpired(): void {
    const now = performance.now();
    if (this.queue.some((w) => w.deadline <= now)) {
      const expired = this.queue.filter((w) => w.deadline <= now);
      this.queue = this.queue.filter((w) => w.deadline > now);
      const error = new IngestError('unavailable', `the database did not take the event within ${this.options.timeoutMs} ms`);
      for (const waiter of expired) {
        this.queuedBytes -= waiter.bytes;
        waiter.reject(error);
      }
    }
    if (this.queue.length === 0) {
      clearInterval(this.sweepTimer);
      this.sweepTimer = undefined;
      if (this.inFlight === 0) this.notifyIdle();
    }
  }

  /** Resolves once everything submitted so far has been written or failed. */
  async drain(): Promise<void> {
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight) return;
    this.scheduled = true;
    // setImmediate lets every request parsed in this I/O turn join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      for (const waiter of batch) this.queuedBytes -= waiter.bytes;
      this.inFlight += 1;
      void this.writeBatch(batch).finally(() => {
        this.inFlight -= 1;
        if (this.queue.length > 0) this.schedule();
        else if (this.inFlight === 0) this.notifyIdle();
      });
    }
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private async writeBatch(batch: Waiter[]): Promise<void> {
    this.metrics?.ingestBatchSize.observe(batch.length);
    try {
      // The batch answers by its oldest request's deadline (the first: the
      // queue is in arrival order), so none waits longer than timeoutMs in all.
      const deadline = batch[0]?.deadline ?? performance.now() + this.options.timeoutMs;
      const stored = await this.insertWithRetry(batch.map((w) => w.row), deadline);
      resolveBatch(batch, stored);
    } catch (err) {
      const failure = err instanceof IngestError ? err.failure : classifyDbError(err);
      if (failure === 'data' && batch.length > 1) {
        // One row the database refuses must not fail its neighbours (they
        // would be retried together forever): write them one by one.
        await Promise.all(batch.map((waiter) => this.writeBatch([waiter])));
        return;
      }
      const error =
        err instanceof IngestError ? err : new IngestError(failure, messageOf(err), { cause: err });
      if (failure !== 'unavailable') this.logger.error({ err, batch: batch.length }, 'outbox insert failed');
      for (const waiter of batch) waiter.reject(error);
    }
  }

  /**
   * A row the INSERT did not store is a duplicate only if its key is in the
   * table. The statement itself confirms most (`present`); this looks again,
   * with a fresh snapshot, for the rest: a key a concurrent batch committed
   * after the statement began (invisible to it, though ON CONFLICT saw it),
   * or every row when a driver or engine quirk dropped the statement's
   * result. So no such quirk can turn a failed insert into a 200.
   */
  private async confirmDuplicates(rows: InsertRow[], known: Set<string>): Promise<void> {
    const unconfirmed = rows.filter((row) => !known.has(`${row[0]}\u0000${row[2]}`));
    if (unconfirmed.length === 0) return;
    const found = await this.database.query<{ source: string; dedupe_key: string }>(
      `SELECT e.source, e.dedupe_key FROM webhook_events e
       JOIN unnest($1::text[], $2::text[]) AS k(source, dedupe_key) ON e.source = k.source AND e.dedupe_key = k.dedupe_key`,
      [pgTextArray(unconfirmed.map((r) => r[0])), pgTextArray(unconfirmed.map((r) => r[2]))],
    );
    const present = new Set(found.map((r) => `${r.source}\u0000${r.dedupe_key}`));
    if (unconfirmed.some((row) => !present.has(`${row[0]}\u0000${row[2]}`))) {
      // Our fault, not the vendor's: 503, so the vendor sends it again.
      throw new IngestError('other', 'the database did not store the event');
    }
  }

  private async insertWithRetry(rows: InsertRow[], deadline: number): Promise<Set<string>> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.insert(rows, deadline);
      } catch (err) {
        // A deadlock with a worker's update is resolved by Postgres aborting
        // one side; running the batch again is safe (ON CONFLICT DO NOTHING).
        if (classifyDbError(err) === 'serialization' && attempt < 3) continue;
        throw err;
      }
    }
  }

  private async insert(rows: InsertRow[], deadline: number): Promise<Set<string>> {
    const params = rows[0]?.map((_, column) => pgTextArray(rows.map((row) => row[column] ?? null))) ?? [];
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new IngestError('unavailable', `the database did not take the event within ${this.options.timeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      const result = await Promise.race([
        this.database.query<{ source: string; dedupe_key: string; stored: boolean; present: boolean | null }>(INSERT_BATCH_SQL, params, { prepare: true }),
        timeout,
      ]);
      const stored = new Set<string>();
      const known = new Set<string>();
      for (const r of result) {
        const key = `${r.source}\u0000${r.dedupe_key}`;
        if (r.stored) stored.add(key);
        if (r.stored || r.present) known.add(key);
      }
      await Promise.race([this.confirmDuplicates(rows, known), timeout]);
      return stored;
    } finally {
      clearTimeout(timer);
    }
  }
}

function toInsertRow(e: NewEvent): InsertRow {
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

/** The first request of a key in the batch stored it if the database says so; any other is a duplicate. */
function resolveBatch(batch: Waiter[], stored: Set<string>): void {
  for (const waiter of batch) {
    if (stored.delete(waiter.key)) waiter.resolve('stored');
    else waiter.resolve('duplicate');
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Whether Postgres could not take raw_body::jsonb as it is: a leading BOM
 * (valid for a vendor, refused by the jsonb parser), or a \u escape that
 * could be a NUL or a lone surrogate (cheaper to repair than to inspect).
 */
function needsJsonbRepair(rawBody: string): boolean {
  return rawBody.charCodeAt(0) === 0xfeff || rawBody.includes('\\u');
}

/**
 * A Postgres array literal of text: each element double-quoted with quotes
 * and backslashes escaped, NULL for null. Parsed by array_in, far cheaper
 * than JSON for the server.
 */
export function pgTextArray(values: ReadonlyArray<string | null>): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    if (i > 0) out += ',';
    const v = values[i];
    // Two plain replaceAll passes are about twice as fast as one regex here.
    out += v === null || v === undefined ? 'NULL' : `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  }
  return `${out}}`;
}

/** A string Postgres text can hold: U+0000 and lone surrogates become U+FFFD. */
function storableText(value: string): string {
  return value.replace(/\u0000/g, '\uFFFD').toWellFormed();
}

/**
 * Postgres jsonb cannot hold U+0000 and refuses lone UTF-16 surrogates, yet
 * both are valid JSON (as the escapes \u0000, \ud800), and a leading BOM is
 * valid for a vendor but not for the jsonb parser. This rewrites the body
 * text (raw_body keeps the original) so raw::jsonb accepts it: the BOM goes,
 * and those escapes become \ufffd. Working on the text keeps it linear in
 * the body's size, whatever its nesting depth. An escape only counts after
 * an odd number of backslashes (`\\u0000` is a backslash and "u0000").
 */
export function repairJsonText(raw: string): string {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  let out = '';
  let last = 0;
  let pendingHigh: { start: number; end: number } | undefined;
  const flushHigh = (paired: boolean) => {
    if (!pendingHigh) return;
    out += text.slice(last, pendingHigh.start) + (paired ? text.slice(pendingHigh.start, pendingHigh.end) : REPLACEMENT_ESCAPE);
    last = pendingHigh.end;
    pendingHigh = undefined;
  };
  // The body is valid JSON (it was parsed already), so escapes can be read
  // left to right; `\\` is one escape, which keeps `\\u0000` literal text.
  for (const m of text.matchAll(JSON_ESCAPE)) {
    const start = m.index;
    const end = start + m[0].length;
    const code = m[1] === undefined ? -1 : parseInt(m[1], 16);
    const isLow = code >= 0xdc00 && code <= 0xdfff;
    if (pendingHigh) {
      const paired = isLow && start === pendingHigh.end;
      flushHigh(paired);
      if (paired) continue;
    }
    if (code === 0 || isLow) {
      out += text.slice(last, start) + REPLACEMENT_ESCAPE;
      last = end;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      pendingHigh = { start, end };
    }
  }
  flushHigh(false);
  return out + text.slice(last);
}

const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|[^u])/g;
const REPLACEMENT_ESCAPE = '\\ufffd';
