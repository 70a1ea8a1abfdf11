import type { Database } from '../db/client';
import { classifyDbError, type DbFailure } from '../db/classify-db-error';
import type { Logger } from '../log';
import type { Metrics } from '../metrics';
import { findStoredKeys, insertEventBatch, insertKey, toInsertRow, type InsertRow, type NewEvent } from './insert-events';

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
      this.queue.push({ row, key: insertKey(row), bytes, deadline: performance.now() + this.options.timeoutMs, resolve, reject });
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
    const unconfirmed = rows.filter((row) => !known.has(insertKey(row)));
    if (unconfirmed.length === 0) return;
    const present = await findStoredKeys(this.database, unconfirmed);
    if (unconfirmed.some((row) => !present.has(insertKey(row)))) {
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
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new IngestError('unavailable', `the database did not take the event within ${this.options.timeoutMs} ms`)),
        Math.max(0, deadline - performance.now()),
      );
    });
    try {
      const { stored, known } = await Promise.race([insertEventBatch(this.database, rows), timeout]);
      await Promise.race([this.confirmDuplicates(rows, known), timeout]);
      return stored;
    } finally {
      clearTimeout(timer);
    }
  }
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
