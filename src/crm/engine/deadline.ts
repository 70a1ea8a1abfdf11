import { SyncError } from '../../core/errors';

/**
 * One write's time budget. Every request of a write (token grant, lookups,
 * the upsert itself) races the same deadline, so a write never outlives
 * CRM_TIMEOUT_MS however many requests it needs, and the worker's signal
 * (shutdown, lease expiry) stops it at once. Real timers on purpose: this
 * bounds real network waits, unlike pacing which follows the injected clock.
 */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly startedAt = Date.now();
  private readonly onOuterAbort: () => void;

  constructor(
    readonly timeoutMs: number,
    crm: string,
    private readonly outer?: AbortSignal,
  ) {
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => {
      this.controller.abort(
        new SyncError('transient', `${crm} did not answer within ${timeoutMs} ms`, { crmCode: 'TIMEOUT' }),
      );
    }, timeoutMs);
    this.timer.unref();
    this.onOuterAbort = () => {
      const reason: unknown = outer?.reason;
      this.controller.abort(
        reason instanceof SyncError
          ? reason
          : new SyncError('transient', `${crm} write aborted by the caller`, { crmCode: 'ABORTED', cause: reason }),
      );
    };
    if (outer?.aborted) this.onOuterAbort();
    else outer?.addEventListener('abort', this.onOuterAbort, { once: true });
  }

  remainingMs(): number {
    return Math.max(0, this.timeoutMs - (Date.now() - this.startedAt));
  }

  /** Throws the abort reason when the deadline has passed or the caller aborted. */
  check(): void {
    if (this.signal.aborted) throw this.signal.reason;
  }

  /**
   * Resolves with `promise`, or rejects when the deadline passes first. The
   * abandoned promise keeps running (neither jsforce's nor the HubSpot SDK's
   * raw request takes a signal); its late result is dropped.
   */
  race<T>(promise: Promise<T>): Promise<T> {
    promise.catch(() => undefined);
    if (this.signal.aborted) return Promise.reject(this.signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = () => reject(this.signal.reason);
      this.signal.addEventListener('abort', onAbort, { once: true });
      promise.then(
        (value) => {
          this.signal.removeEventListener('abort', onAbort);
          resolve(value);
        },
        (err: unknown) => {
          this.signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.outer?.removeEventListener('abort', this.onOuterAbort);
  }
}
