import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config';
import { type StoredEvent } from '../core/event';
import { sleepUnlessAborted } from '../core/time';
import { type CrmTarget } from '../crm/engine/target-contract';
import type { Database } from '../db/client';
import { classifyDbError } from '../db/classify-db-error';
import { type Logger } from '../log';
import { type MappingSet } from '../mapping/mapping-set';
import type { Metrics } from '../metrics';
import { claimBatch, type ClaimedCall } from '../outbox/claim-calls';
import { completeSyncs } from '../outbox/complete-syncs';
import { PENDING_CHANNEL } from '../outbox/pending-channel';
import { ShutdownAbort } from './abort-reasons';
import { prepareBatch, writeCompletions, type FailureOutcome } from './batch';
import { keepLeases } from './leases';
import { recordOutcomes } from './record-outcomes';
import { failureOutcome, writeWithRetry } from './retry';

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
    const leases = keepLeases(
      { database: this.deps.database, leaseSeconds: this.deps.config.SYNC_LEASE_SECONDS, log: this.log },
      token,
      batch.map((b) => b.call.id),
      controller,
    );
    try {
      await this.syncBatch(token, batch, controller.signal, leases.confirm);
    } finally {
      leases.stop();
      this.batchControllers.delete(controller);
    }
    return batch.length;
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

  /** Folds and maps the batch, writes it (with quick retries), and records every outcome in one statement. */
  private async syncBatch(
    token: string,
    batch: Array<{ call: ClaimedCall; events: StoredEvent[] }>,
    signal: AbortSignal,
    confirmLeases: () => Promise<void>,
  ): Promise<void> {
    const { target, metrics } = this.deps;
    const startedAt = this.now();
    const mappings = this.deps.mappings.current();
    const fail: FailureOutcome = (base, error) => failureOutcome({ config: this.deps.config, now: this.now }, base, error);

    const { pending, completions } = await prepareBatch(batch, mappings, target, startedAt, fail);
    if (pending.length > 0) {
      const results = await writeWithRetry({ target, metrics, now: this.now }, pending.map((p) => p.item), signal, confirmLeases);
      completions.push(...writeCompletions(pending, results, target, startedAt, fail));
    }

    const written = await completeSyncs(this.deps.database, token, completions);
    recordOutcomes({ metrics, target, log: this.log, now: this.now }, completions, written, batch);
  }
}
