import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import pRetry from 'p-retry';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { classifyDbError } from '../db/errors';
import { errorMessage } from '../errors';
import type { Logger } from '../log';
import { MappingError, type CrmKind, type CrmRecord, type JsonValue, type MappingSet, type StoredEvent } from '../mapping/types';
import type { Metrics } from '../metrics';
import { PENDING_CHANNEL } from '../outbox/ingest';
import {
  claimBatch,
  completeSyncs,
  extendLeases,
  releaseCalls,
  type ClaimedCall,
  type SyncCompletion,
} from '../outbox/sync-store';
import { SyncError, type CrmTarget, type WriteItem, type WriteResult } from '../crm/types';
import { nextAttemptAt } from './backoff';

export type WorkerConfig = Pick<
  Config,
  | 'SYNC_MAX_ATTEMPTS'
  | 'SYNC_BACKOFF_BASE_MS'
  | 'SYNC_BACKOFF_MAX_MS'
  | 'SYNC_LEASE_SECONDS'
  | 'SYNC_POLL_MS'
  | 'SYNC_BATCH_WAIT_MS'
  | 'WORKER_CONCURRENCY'
  | 'WORKER_SHUTDOWN_MS'
>;

export interface WorkerDeps {
  database: Database;
  mappings: { current(): MappingSet };
  target: CrmTarget;
  config: WorkerConfig;
  logger: Logger;
  metrics: Metrics;
  workerId?: string;
  now?: () => Date;
}

/** crmCode of a write the worker itself aborted while shutting down. */
const SHUTDOWN_ABORT = 'WORKER_SHUTDOWN';

/** In-process retries of a whole batch for transient errors, before the durable schedule takes over. */
const QUICK_RETRIES = 2;
/** A Retry-After longer than this is left to the durable schedule rather than waited out in process. */
const QUICK_RETRY_MAX_WAIT_MS = 5_000;

/**
 * Drains the outbox into the CRM target.
 *
 * WORKER_CONCURRENCY slots each claim a batch of due calls (as many as one
 * CRM request carries), fold and map them, write them in one request, and
 * record every outcome in one statement. New rows wake idle slots through
 * LISTEN/NOTIFY; a poll every SYNC_POLL_MS is the fallback (and picks up
 * scheduled retries). Idle, a process costs one cheap query per poll.
 */
export class SyncWorker {
  readonly workerId: string;
  private running = false;
  private readonly stopController = new AbortController();
  private readonly slots: Promise<void>[] = [];
  private readonly waiters = new Set<(reason: 'notify' | 'poll') => void>();
  private pollTimer: NodeJS.Timeout | undefined;
  private unlisten: (() => Promise<void>) | undefined;
  /** Calls claimed and not yet completed, by slot, so shutdown can give them back. */
  private readonly claimedNotWritten = new Set<number>();
  private readonly writeControllers = new Set<AbortController>();
  private readonly now: () => Date;
  private readonly log: Logger;

  constructor(private readonly deps: WorkerDeps) {
    this.workerId = deps.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    this.now = deps.now ?? (() => new Date());
    this.log = deps.logger.child({ component: 'worker', workerId: this.workerId });
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      this.unlisten = await this.deps.database.listen(PENDING_CHANNEL, () => this.wake('notify'));
    } catch (err) {
      // Polling still delivers everything, only later.
      this.log.warn({ err }, 'LISTEN failed; falling back to polling');
    }
    this.pollTimer = setInterval(() => this.wake('poll'), this.deps.config.SYNC_POLL_MS);
    this.pollTimer.unref();
    for (let slot = 0; slot < this.deps.config.WORKER_CONCURRENCY; slot += 1) {
      this.slots.push(this.slotLoop(slot));
    }
    this.log.info(
      { target: this.deps.target.name, concurrency: this.deps.config.WORKER_CONCURRENCY },
      'sync worker started',
    );
  }

  /**
   * Stops claiming, lets in-flight batches finish until the deadline, then
   * aborts what is left (those calls are rescheduled, not failed) and gives
   * back leases never used. Resolves when nothing of this worker is running.
   */
  async stop(deadlineMs = this.deps.config.WORKER_SHUTDOWN_MS): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort();
    clearInterval(this.pollTimer);
    this.wake('notify');
    const deadline = setTimeout(() => {
      for (const controller of this.writeControllers) controller.abort(new Error('worker shutting down'));
    }, deadlineMs);
    try {
      await Promise.allSettled(this.slots);
    } finally {
      clearTimeout(deadline);
    }
    await releaseCalls(this.deps.database, this.workerId, [...this.claimedNotWritten]).catch((err: unknown) =>
      this.log.warn({ err }, 'could not release leases; they will expire'),
    );
    await this.unlisten?.().catch(() => {});
    this.log.info('sync worker stopped');
  }

  /** Claims and syncs one batch; returns how many calls it handled. Used by the loop and by tests. */
  async runOnce(): Promise<number> {
    const target = this.deps.target;
    const batch = await claimBatch(this.deps.database, {
      workerId: this.workerId,
      leaseSeconds: this.deps.config.SYNC_LEASE_SECONDS,
      limit: target.maxBatch,
    });
    if (batch.length === 0) return 0;
    const ids = batch.map((b) => b.call.id);
    for (const id of ids) this.claimedNotWritten.add(id);
    const stopHeartbeat = this.keepLeases(ids);
    try {
      await this.syncBatch(batch);
    } finally {
      stopHeartbeat();
      for (const id of ids) this.claimedNotWritten.delete(id);
    }
    return batch.length;
  }

  /**
   * Renews the batch's leases every third of SYNC_LEASE_SECONDS while it is
   * being written. A write is then never abandoned for the lease's sake
   * (an abandoned HTTP request can still land at the CRM after a retry's),
   * while a worker that dies stops renewing and its calls come back within
   * one lease. The write itself is bounded by CRM_TIMEOUT_MS.
   */
  private keepLeases(ids: number[]): () => void {
    const everyMs = Math.max(500, (this.deps.config.SYNC_LEASE_SECONDS * 1000) / 3);
    const timer = setInterval(() => {
      extendLeases(this.deps.database, this.workerId, ids, this.deps.config.SYNC_LEASE_SECONDS).catch((err: unknown) =>
        this.log.warn({ err }, 'could not renew leases; they may expire during this write'),
      );
    }, everyMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  private async slotLoop(slot: number): Promise<void> {
    const signal = this.stopController.signal;
    let failures = 0;
    while (this.running) {
      const pausedUntil = this.deps.target.pausedUntil();
      if (pausedUntil && pausedUntil > this.now()) {
        await sleep(Math.min(pausedUntil.getTime() - this.now().getTime(), this.deps.config.SYNC_POLL_MS), signal);
        continue;
      }
      let handled: number;
      try {
        handled = await this.runOnce();
        failures = 0;
      } catch (err) {
        failures += 1;
        const level = classifyDbError(err) === 'unavailable' ? 'warn' : 'error';
        this.log[level]({ err, slot }, 'sync batch failed; backing off');
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)), signal);
        continue;
      }
      if (handled === this.deps.target.maxBatch) {
        // A full batch means more is due: wake the idle slots too (after a
        // poll tick only one slot was woken).
        this.wake('notify');
      } else if (handled === 0) {
        await this.waitForWork();
      } else if (handled < this.deps.target.maxBatch && this.deps.config.SYNC_BATCH_WAIT_MS > 0) {
        // A part-full batch means we are keeping up: let the next one fill a
        // little so one CRM request carries many calls instead of a few.
        await sleep(this.deps.config.SYNC_BATCH_WAIT_MS, signal);
      }
    }
  }

  /** Idle slots wait here. NOTIFY wakes them all; a poll tick wakes one, which wakes the rest if it finds work. */
  private waitForWork(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = () => {
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }

  private wake(reason: 'notify' | 'poll'): void {
    if (reason === 'notify') {
      for (const waiter of [...this.waiters]) waiter(reason);
      return;
    }
    const first = this.waiters.values().next();
    if (!first.done) first.value(reason);
  }

  private async syncBatch(batch: Array<{ call: ClaimedCall; events: StoredEvent[] }>): Promise<void> {
    const { target, metrics } = this.deps;
    const startedAt = this.now();
    const mappings = this.deps.mappings.current();

    const completions: SyncCompletion[] = [];
    const pending: Array<{ call: ClaimedCall; item: WriteItem; activity: JsonValue; maxEventId: number }> = [];
    for (const { call, events } of batch) {
      const maxEventId = events.reduce((max, e) => Math.max(max, e.id), 0);
      const base = { id: call.id, source: call.source, callKey: call.callKey, claimedVersion: call.version, maxEventId, target: target.name, startedAt, attempt: call.attempts + 1 };
      try {
        if (events.length === 0) throw new MappingError('the call has no syncable events (were they discarded?)');
        const activity = await mappings.fold(call.source, call.callKey, events);
        const records: Partial<Record<CrmKind, CrmRecord[]>> = {};
        for (const crm of target.needs) records[crm] = await mappings.toCrm(activity, crm);
        const knownIds: Record<string, string> = {};
        if (call.crmId) knownIds[activity.externalId] = call.crmId;
        if (call.crmFollowupId) knownIds[`${activity.externalId}:callback`] = call.crmFollowupId;
        pending.push({
          call,
          maxEventId,
          activity: activity as unknown as JsonValue,
          item: { syncId: call.id, externalId: activity.externalId, records, knownIds },
        });
      } catch (err) {
        // A poison event fails its own call only; the rest of the batch goes on.
        const error = err instanceof SyncError ? err : new SyncError('mapping', `mapping failed: ${errorMessage(err)}${whereInMappings(err)}`, { cause: err });
        completions.push(this.failure(base, error));
      }
    }

    if (pending.length > 0) {
      const results = await this.write(pending.map((p) => p.item));
      pending.forEach((p, index) => {
        const result = results[index] ?? { ok: false as const, error: new SyncError('transient', 'the target gave no result for this call') };
        const base = {
          id: p.call.id,
          source: p.call.source,
          callKey: p.call.callKey,
          claimedVersion: p.call.version,
          maxEventId: p.maxEventId,
          target: target.name,
          startedAt,
          attempt: p.call.attempts + 1,
          activity: p.activity,
        };
        if (result.ok) {
          const externalId = p.item.externalId;
          completions.push({
            ...base,
            outcome: 'synced',
            countsAsAttempt: true,
            crmId: result.ids[externalId] ?? null,
            crmFollowupId: result.ids[`${externalId}:callback`] ?? null,
            crmPayload: result.sent,
            ...(result.response === undefined ? {} : { crmResponse: result.response }),
          });
          metrics.syncsSucceeded.inc({ target: target.name });
          metrics.syncLatency.observe({ target: target.name }, Math.max(0, (this.now().getTime() - p.call.lastEventAt.getTime()) / 1000));
        } else {
          completions.push({ ...this.failure(base, result.error), ...(result.sent === undefined ? {} : { crmPayload: result.sent }) });
        }
      });
    }

    const written = await completeSyncs(this.deps.database, this.workerId, completions);
    if (written.length < completions.length) {
      this.log.warn({ expected: completions.length, written: written.length }, 'some leases expired before completion; another worker owns those calls');
    }
    for (const c of completions) this.claimedNotWritten.delete(c.id);
  }

  /** Writes one batch, retrying transient failures a couple of times in process. */
  private async write(items: WriteItem[]): Promise<WriteResult[]> {
    const { target, metrics } = this.deps;
    const controller = new AbortController();
    this.writeControllers.add(controller);
    try {
      return await pRetry(
        async () => {
          const started = performance.now();
          try {
            // Targets honour the signal; the race makes sure one that does not cannot hold up shutdown.
            const results = await raceAbort(target.write(items, controller.signal), controller.signal);
            metrics.crmRequestSeconds.observe({ target: target.name, outcome: 'ok' }, (performance.now() - started) / 1000);
            return results;
          } catch (err) {
            metrics.crmRequestSeconds.observe({ target: target.name, outcome: 'error' }, (performance.now() - started) / 1000);
            throw err;
          }
        },
        {
          retries: QUICK_RETRIES,
          minTimeout: 200,
          factor: 4,
          randomize: true,
          signal: controller.signal,
          shouldRetry: ({ error }) =>
            error instanceof SyncError &&
            error.kind === 'transient' &&
            (error.retryAt === undefined || error.retryAt.getTime() - this.now().getTime() <= QUICK_RETRY_MAX_WAIT_MS),
          onFailedAttempt: async ({ error, retriesLeft }) => {
            if (retriesLeft > 0 && error instanceof SyncError && error.kind === 'transient') {
              metrics.syncRetries.inc({ target: target.name, scope: 'quick' });
              if (error.retryAt) await sleep(Math.max(0, error.retryAt.getTime() - this.now().getTime()), controller.signal);
            }
          },
        },
      );
    } catch (err) {
      const error =
        err instanceof SyncError
          ? err
          : controller.signal.aborted
            ? new SyncError('transient', `write aborted: ${errorMessage(controller.signal.reason)}`, { crmCode: SHUTDOWN_ABORT })
            : new SyncError('transient', `write failed: ${errorMessage(err)}`, { cause: err });
      return items.map(() => ({ ok: false as const, error }));
    } finally {
      this.writeControllers.delete(controller);
    }
  }

  /** Reschedule or give up, by the error's kind and the attempt budget. */
  private failure(
    base: Omit<SyncCompletion, 'outcome' | 'countsAsAttempt'>,
    error: SyncError,
  ): SyncCompletion {
    const { config, metrics, target } = this.deps;
    const now = this.now();
    const common = {
      ...base,
      errorKind: error.kind,
      error: error.message,
      httpStatus: error.httpStatus ?? null,
      ...(error.crmResponse === undefined ? {} : { crmResponse: error.crmResponse }),
    };
    if (!error.retryable) {
      metrics.syncsFailed.inc({ target: target.name, kind: error.kind, outcome: 'failed' });
      return { ...common, outcome: 'failed', countsAsAttempt: true };
    }
    // A spent quota is the CRM's schedule, and a write cut short by our own
    // shutdown is ours: neither is the call's fault, so neither uses up attempts.
    const counts = error.kind !== 'quota' && error.crmCode !== SHUTDOWN_ABORT;
    if (counts && base.attempt >= config.SYNC_MAX_ATTEMPTS) {
      metrics.syncsFailed.inc({ target: target.name, kind: error.kind, outcome: 'failed' });
      return { ...common, outcome: 'failed', countsAsAttempt: true };
    }
    metrics.syncsFailed.inc({ target: target.name, kind: error.kind, outcome: 'retry' });
    metrics.syncRetries.inc({ target: target.name, scope: 'durable' });
    return {
      ...common,
      outcome: 'retry',
      countsAsAttempt: counts,
      nextAttemptAt: nextAttemptAt({
        now,
        attempt: base.attempt,
        baseMs: config.SYNC_BACKOFF_BASE_MS,
        maxMs: config.SYNC_BACKOFF_MAX_MS,
        retryAt: error.retryAt,
      }),
    };
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** ' (hcc.yaml:78, custom.qaCheck)': which file and rule to fix, when the mapping layer knows. */
function whereInMappings(err: unknown): string {
  if (!(err instanceof MappingError) || err.details.file === undefined) return '';
  const { line, field } = err.details;
  // mappings/hcc.yaml rather than an absolute path, when the files live under the working directory.
  const relative = path.relative(process.cwd(), err.details.file);
  const file = relative.startsWith('..') || path.isAbsolute(relative) ? err.details.file : relative;
  const place = line === undefined ? file : `${file}:${line}`;
  return field === undefined || field === '' ? ` (${place})` : ` (${place}, ${field})`;
}
