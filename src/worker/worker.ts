import { sleepUnlessAborted } from '../core/time';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import path from 'node:path';
import pRetry from 'p-retry';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { classifyDbError } from '../db/errors';
import { errorMessage } from '../core/errors';
import { scrubPhones, type Logger } from '../log';
import { type MappingSet } from '../mapping/types';
import { MappingError } from '../core/errors';
import { type CrmKind, type CrmRecord } from '../core/crm-record';
import { type JsonValue } from '../core/json';
import { type StoredEvent } from '../core/event';
import type { Metrics } from '../metrics';
import { PENDING_CHANNEL } from '../outbox/ingest';
import { claimBatch, completeSyncs, extendLeases, type ClaimedCall, type SyncCompletion } from '../outbox/sync-store';
import { type CrmTarget, type WriteItem, type WriteResult } from '../crm/types';
import { SyncError } from '../core/errors';
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

/** crmCode of a write the worker itself cut short: its shutdown deadline passed. */
const SHUTDOWN_ABORT = 'WORKER_SHUTDOWN';
/** crmCode of a write abandoned because the batch's lease was lost (see keepLeases). */
const LEASE_LOST = 'LEASE_LOST';

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
  /** One per batch in flight: aborting it stops that batch's CRM write (shutdown deadline, lost lease). */
  private readonly batchControllers = new Set<AbortController>();
  /** Set once the shutdown deadline has passed: no new CRM write starts. */
  private deadlinePassed = false;
  private claims = 0;
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
   * Stops claiming and lets in-flight batches finish until the deadline.
   * Then it aborts their CRM writes and starts no new one: those calls are
   * completed as `released`, due again at once for any worker, with no
   * attempt used. Resolves when nothing of this worker is running.
   */
  async stop(deadlineMs = this.deps.config.WORKER_SHUTDOWN_MS): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.stopController.abort();
    clearInterval(this.pollTimer);
    this.wake('notify');
    const deadline = setTimeout(() => {
      this.deadlinePassed = true;
      for (const controller of this.batchControllers) controller.abort(new ShutdownAbort());
    }, deadlineMs);
    try {
      await Promise.allSettled(this.slots);
    } finally {
      clearTimeout(deadline);
    }
    await this.unlisten?.().catch(() => {});
    this.log.info('sync worker stopped');
  }

  /** Claims and syncs one batch; returns how many calls it handled. Used by the loop and by tests. */
  async runOnce(): Promise<number> {
    const target = this.deps.target;
    // A token per claim: the lease is this batch's, not the process's, so a
    // completion or renewal can never act on a lease another slot (or another
    // worker) holds now.
    const token = `${this.workerId}#${(this.claims += 1)}`;
    const batch = await claimBatch(this.deps.database, {
      token,
      leaseSeconds: this.deps.config.SYNC_LEASE_SECONDS,
      limit: target.maxBatch,
    });
    if (batch.length === 0) return 0;
    const controller = new AbortController();
    this.batchControllers.add(controller);
    if (this.deadlinePassed) controller.abort(new ShutdownAbort());
    const leases = this.keepLeases(token, batch.map((b) => b.call.id), controller);
    try {
      await this.syncBatch(token, batch, controller.signal, leases.confirm);
    } finally {
      leases.stop();
      this.batchControllers.delete(controller);
    }
    return batch.length;
  }

  /**
   * Renews the batch's leases every third of SYNC_LEASE_SECONDS while it is
   * being written, so a slow write keeps its calls while a worker that dies
   * stops renewing and its calls come back within one lease.
   *
   * A lease can still be lost: the process stalled or the database was out
   * of reach for longer than the lease, and another worker may already be
   * writing the same call. Then this write is abandoned at once, so the
   * older fold is not sent over the newer one: when a renewal finds a lease
   * taken, when no renewal has succeeded for two thirds of a lease (checked
   * on every tick, so a renewal that hangs counts too), and before every
   * quick retry, which confirms the leases first (`confirm`).
   */
  private keepLeases(token: string, ids: number[], controller: AbortController): { stop: () => void; confirm: () => Promise<void> } {
    const leaseMs = this.deps.config.SYNC_LEASE_SECONDS * 1000;
    let renewedAt = performance.now();
    let renewing: Promise<void> | undefined;
    const abandon = (message: string, fields: Record<string, unknown>) => {
      if (controller.signal.aborted) return;
      this.log.warn({ token, ...fields }, message);
      controller.abort(new LeaseLost());
    };
    const renew = (): Promise<void> =>
      (renewing ??= extendLeases(this.deps.database, token, ids, this.deps.config.SYNC_LEASE_SECONDS)
        .then(
          (held) => {
            renewedAt = performance.now();
            if (held.size < ids.length) abandon('lost the lease on calls being written; abandoning this write', { lost: ids.filter((id) => !held.has(id)) });
          },
          (err: unknown) => this.log.warn({ err, token }, 'could not renew leases; trying again'),
        )
        .finally(() => {
          renewing = undefined;
        }));
    const timer = setInterval(() => {
      if (performance.now() - renewedAt > (leaseMs * 2) / 3) {
        abandon('no lease renewal for two thirds of a lease; abandoning this write', {});
        return;
      }
      void renew();
    }, Math.max(500, leaseMs / 3));
    timer.unref();
    return {
      stop: () => clearInterval(timer),
      confirm: async () => {
        await renew();
        controller.signal.throwIfAborted();
      },
    };
  }

  private async slotLoop(slot: number): Promise<void> {
    const signal = this.stopController.signal;
    let failures = 0;
    while (this.running) {
      const pausedUntil = this.deps.target.pausedUntil();
      if (pausedUntil && pausedUntil > this.now()) {
        await sleepUnlessAborted(Math.min(pausedUntil.getTime() - this.now().getTime(), this.deps.config.SYNC_POLL_MS), signal);
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
        await sleepUnlessAborted(Math.min(30_000, 500 * 2 ** Math.min(failures, 6)), signal);
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
        await sleepUnlessAborted(this.deps.config.SYNC_BATCH_WAIT_MS, signal);
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

  private async syncBatch(
    token: string,
    batch: Array<{ call: ClaimedCall; events: StoredEvent[] }>,
    signal: AbortSignal,
    confirmLeases: () => Promise<void>,
  ): Promise<void> {
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
        // Stored ids are only this target's to use: after a switch (dry-run to
        // Salesforce, say) they name records in another system.
        const knownIds: Record<string, string> = {};
        if (call.target === target.name) {
          if (call.crmId) knownIds[activity.externalId] = call.crmId;
          if (call.crmFollowupId) knownIds[`${activity.externalId}:callback`] = call.crmFollowupId;
        }
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
      const results = await this.write(pending.map((p) => p.item), signal, confirmLeases);
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
        } else {
          completions.push({ ...this.failure(base, result.error), ...(result.sent === undefined ? {} : { crmPayload: result.sent }) });
        }
      });
    }

    const written = await completeSyncs(this.deps.database, token, completions);
    this.recordOutcomes(completions, written, batch);
  }

  /**
   * Metrics and log lines once the outcomes are committed (a completion a
   * lost lease dropped did not happen). One line per call that did not sync,
   * at warn when it gave up; a whole batch failing the same way (an outage)
   * logs once instead of once per call.
   */
  private recordOutcomes(
    completions: SyncCompletion[],
    written: Array<{ id: number; status: string; attempts: number }>,
    batch: Array<{ call: ClaimedCall }>,
  ): void {
    const { metrics, target } = this.deps;
    const labels = { target: target.name };
    const committed = new Map(written.map((w) => [w.id, w]));
    const calls = new Map(batch.map((b) => [b.call.id, b.call]));
    if (written.length < completions.length) {
      this.log.warn({ expected: completions.length, written: written.length }, 'some leases expired before completion; another worker owns those calls');
    }
    const unsynced: Array<{ completion: SyncCompletion; status: string }> = [];
    for (const completion of completions) {
      const row = committed.get(completion.id);
      if (!row) continue;
      if (completion.outcome === 'synced') {
        metrics.syncsSucceeded.inc(labels);
        const call = calls.get(completion.id);
        if (call) metrics.syncLatency.observe(labels, Math.max(0, (this.now().getTime() - call.lastEventAt.getTime()) / 1000));
        continue;
      }
      if (completion.outcome === 'released') continue;
      const gaveUp = row.status === 'failed';
      metrics.syncsFailed.inc({ ...labels, kind: completion.errorKind ?? 'unknown', outcome: gaveUp ? 'failed' : 'retry' });
      if (!gaveUp) metrics.syncRetries.inc({ ...labels, scope: 'durable' });
      unsynced.push({ completion, status: row.status });
    }
    const first = unsynced[0]?.completion;
    const sameForAll = first !== undefined && unsynced.length > 1 && unsynced.every((u) => u.completion.error === first.error && u.status === unsynced[0]?.status);
    if (sameForAll) {
      this.log.warn(
        { target: target.name, calls: unsynced.length, status: unsynced[0]?.status, kind: first.errorKind, httpStatus: first.httpStatus, error: scrubPhones(first.error ?? '') },
        unsynced[0]?.status === 'failed' ? 'sync failed for a batch of calls; giving up on them' : 'sync failed for a batch of calls; rescheduled',
      );
      return;
    }
    for (const { completion: c, status } of unsynced) {
      const fields = {
        callId: c.id,
        source: c.source,
        attempt: c.attempt,
        kind: c.errorKind,
        httpStatus: c.httpStatus,
        error: scrubPhones(c.error ?? ''),
        ...(status === 'pending' && c.nextAttemptAt ? { nextAttemptAt: c.nextAttemptAt.toISOString() } : {}),
      };
      if (status === 'failed') this.log.warn(fields, 'sync failed; giving up on the call until it is replayed');
      else this.log.info(fields, 'sync failed; rescheduled');
    }
  }

  /**
   * Writes one batch, retrying transient failures a couple of times in
   * process. A Retry-After (or pacing) longer than QUICK_RETRY_MAX_WAIT_MS is
   * not waited out here: the batch goes to the durable schedule at once,
   * freeing the slot and the leases. p-retry asks onFailedAttempt before
   * shouldRetry, so the wait is decided in shouldRetry and served at the start
   * of the next attempt.
   */
  private async write(items: WriteItem[], signal: AbortSignal, confirmLeases: () => Promise<void>): Promise<WriteResult[]> {
    const { target, metrics } = this.deps;
    if (signal.aborted) return items.map(() => ({ ok: false as const, error: abortError(signal) }));
    let waitUntil: number | undefined;
    try {
      return await pRetry(
        async (attempt) => {
          if (attempt > 1) {
            metrics.syncRetries.inc({ target: target.name, scope: 'quick' });
            if (waitUntil !== undefined) await sleepUnlessAborted(waitUntil - this.now().getTime(), signal);
            // Still ours? A retry must not re-send a call another worker now holds.
            await confirmLeases();
          }
          const started = performance.now();
          try {
            // Targets honour the signal; the race makes sure one that does not cannot hold up shutdown.
            const results = await raceAbort(target.write(items, signal), signal);
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
          signal,
          shouldRetry: ({ error }) => {
            if (!(error instanceof SyncError) || error.kind !== 'transient') return false;
            if (error.retryAt === undefined) {
              waitUntil = undefined;
              return true;
            }
            waitUntil = error.retryAt.getTime();
            return waitUntil - this.now().getTime() <= QUICK_RETRY_MAX_WAIT_MS;
          },
        },
      );
    } catch (err) {
      const error =
        signal.aborted ? abortError(signal)
        : err instanceof SyncError ? err
        : new SyncError('transient', `write failed: ${errorMessage(err)}`, { cause: err });
      return items.map(() => ({ ok: false as const, error }));
    }
  }

  /** Reschedule or give up, by the error's kind and the attempt budget. */
  private failure(
    base: Omit<SyncCompletion, 'outcome' | 'countsAsAttempt'>,
    error: SyncError,
  ): SyncCompletion {
    const { config } = this.deps;
    const now = this.now();
    const common = {
      ...base,
      errorKind: error.kind,
      error: error.message,
      httpStatus: error.httpStatus ?? null,
      ...(error.crmResponse === undefined ? {} : { crmResponse: error.crmResponse }),
    };
    // A write cut short by our own shutdown or a lost lease is ours, not the
    // call's: due again at once, for whichever worker holds it next.
    if (error.crmCode === SHUTDOWN_ABORT || error.crmCode === LEASE_LOST) {
      return { ...common, outcome: 'released', countsAsAttempt: false };
    }
    if (!error.retryable) return { ...common, outcome: 'failed', countsAsAttempt: true };
    // A spent quota is the CRM's schedule, not the call's fault: no attempt used.
    const counts = error.kind !== 'quota';
    if (counts && base.attempt >= config.SYNC_MAX_ATTEMPTS) return { ...common, outcome: 'failed', countsAsAttempt: true };
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

class ShutdownAbort extends Error {
  constructor() {
    super('the worker is shutting down');
  }
}

class LeaseLost extends Error {
  constructor() {
    super('the lease on this batch was lost');
  }
}

/** The SyncError for a write this worker cut short, from the signal's reason. */
function abortError(signal: AbortSignal): SyncError {
  const reason: unknown = signal.reason;
  const crmCode = reason instanceof LeaseLost ? LEASE_LOST : SHUTDOWN_ABORT;
  return new SyncError('transient', `write abandoned: ${errorMessage(reason)}`, { crmCode });
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
