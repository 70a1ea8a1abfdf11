import { errorMessage, SyncError } from '../core/errors';

/**
 * Why the worker cut a CRM write short, carried as the AbortSignal's reason
 * and turned into a SyncError whose crmCode says it was ours, not the
 * call's: such a write is completed as `released` (see retry.ts).
 */

/** crmCode of a write the worker itself cut short: its shutdown deadline passed. */
export const SHUTDOWN_ABORT = 'WORKER_SHUTDOWN';
/** crmCode of a write abandoned because the batch's lease was lost (see keepLeases). */
export const LEASE_LOST = 'LEASE_LOST';

export class ShutdownAbort extends Error {
  constructor() {
    super('the worker is shutting down');
  }
}

export class LeaseLost extends Error {
  constructor() {
    super('the lease on this batch was lost');
  }
}

/** The SyncError for a write this worker cut short, from the signal's reason. */
export function abortError(signal: AbortSignal): SyncError {
  const reason: unknown = signal.reason;
  const crmCode = reason instanceof LeaseLost ? LEASE_LOST : SHUTDOWN_ABORT;
  return new SyncError('transient', `write abandoned: ${errorMessage(reason)}`, { crmCode });
}

/** Settles with `work`, or rejects with the signal's reason as soon as it aborts. */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
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
