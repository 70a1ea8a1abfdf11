import pRetry from 'p-retry';
import type { Config } from '../config';
import { errorMessage, SyncError } from '../core/errors';
import { sleepUnlessAborted } from '../core/time';
import type { CrmTarget, WriteItem, WriteResult } from '../crm/engine/target-contract';
import type { Metrics } from '../metrics';
import type { SyncCompletion } from '../outbox/complete-syncs';
import { abortError, LEASE_LOST, raceAbort, SHUTDOWN_ABORT } from './abort-reasons';
import { nextAttemptAt } from './backoff';

/** The settings that decide whether and when a failed call is tried again. */
export type RetryConfig = Pick<Config, 'SYNC_MAX_ATTEMPTS' | 'SYNC_BACKOFF_BASE_MS' | 'SYNC_BACKOFF_MAX_MS'>;

/** In-process retries of a whole batch for transient errors, before the durable schedule takes over. */
const QUICK_RETRIES = 2;
/** A Retry-After longer than this is left to the durable schedule rather than waited out in process. */
const QUICK_RETRY_MAX_WAIT_MS = 5_000;

/**
 * Writes one batch, retrying transient failures a couple of times in
 * process. A Retry-After (or pacing) longer than QUICK_RETRY_MAX_WAIT_MS is
 * not waited out here: the batch goes to the durable schedule at once,
 * freeing the slot and the leases. p-retry asks onFailedAttempt before
 * shouldRetry, so the wait is decided in shouldRetry and served at the start
 * of the next attempt.
 */
export async function writeWithRetry(
  deps: { target: CrmTarget; metrics: Metrics; now: () => Date },
  items: WriteItem[],
  signal: AbortSignal,
  confirmLeases: () => Promise<void>,
): Promise<WriteResult[]> {
  const { target, metrics } = deps;
  if (signal.aborted) return items.map(() => ({ ok: false as const, error: abortError(signal) }));
  let waitUntil: number | undefined;
  try {
    return await pRetry(
      async (attempt) => {
        if (attempt > 1) {
          metrics.syncRetries.inc({ target: target.name, scope: 'quick' });
          if (waitUntil !== undefined) await sleepUnlessAborted(waitUntil - deps.now().getTime(), signal);
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
          return waitUntil - deps.now().getTime() <= QUICK_RETRY_MAX_WAIT_MS;
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
export function failureOutcome(
  deps: { config: RetryConfig; now: () => Date },
  base: Omit<SyncCompletion, 'outcome' | 'countsAsAttempt'>,
  error: SyncError,
): SyncCompletion {
  const { config } = deps;
  const now = deps.now();
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
