import type { Clock } from '../../core/time';
import type { Deadline } from './deadline';
import { SyncError } from '../../core/errors';

/**
 * Paces one target's requests so it stays under the CRM's limits instead of
 * running into them. It combines:
 *  - a local sliding window (HubSpot's 10-second burst limit, its 4-5/s
 *    search limit), sized to `headroom` of the limit the CRM announces, since
 *    other apps and our other worker processes share the same budget;
 *  - the CRM's own count: when its headers say little is left
 *    (X-HubSpot-RateLimit-Remaining, Sforce-Limit-Info) requests are spaced
 *    out so the remainder lasts the window;
 *  - a block until a Retry-After / 423 / 429 time;
 *  - a quota pause (Salesforce TotalRequests, HubSpot DAILY): no request at
 *    all until the reset, so retries do not burn what is left of the day;
 *  - a cap on requests in flight.
 * A wait longer than `maxInlineWaitMs` (or the write's remaining time) is not
 * slept through: acquire() throws a retryable SyncError carrying `retryAt`, so
 * the worker reschedules durably instead of holding its batch.
 */
export interface PacerOptions {
  name: string;
  clock: Clock;
  maxConcurrent: number;
  window?: { limit: number; intervalMs: number };
  /** Share of an announced limit we allow ourselves (the rest is for everyone else). */
  headroom?: number;
  maxInlineWaitMs?: number;
}

export type Release = () => void;

export class Pacer {
  private readonly clock: Clock;
  private readonly headroom: number;
  private readonly maxInlineWaitMs: number;
  private window: { limit: number; intervalMs: number } | undefined;
  private readonly sentAt: number[] = [];
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private spacingMs = 0;
  private blockedUntil = 0;
  private blockReason = '';
  private quota: { until: number; make: (retryAt: Date) => SyncError } | undefined;
  private inFlight = 0;
  private readonly slotWaiters: Array<() => void> = [];

  constructor(private readonly options: PacerOptions) {
    this.clock = options.clock;
    this.headroom = options.headroom ?? 0.9;
    this.maxInlineWaitMs = options.maxInlineWaitMs ?? 5_000;
    this.window = options.window;
  }

  /** While a quota is spent: when calls may resume. */
  pausedUntil(): Date | undefined {
    if (this.quota === undefined) return undefined;
    if (this.quota.until <= this.clock.now()) {
      this.quota = undefined;
      return undefined;
    }
    return new Date(this.quota.until);
  }

  /** Throws the quota error while paused; a write checks this before any work. */
  assertNotPaused(): void {
    const until = this.pausedUntil();
    if (until !== undefined && this.quota !== undefined) throw this.quota.make(until);
  }

  /**
   * Waits for the right to send one request. Returns the function that gives
   * the in-flight slot back; call it when the response has arrived.
   */
  async acquire(deadline: Deadline): Promise<Release> {
    for (;;) {
      deadline.check();
      const waitMs = this.waitMs(deadline);
      if (waitMs > 0) {
        await this.clock.sleep(waitMs, deadline.signal);
        continue;
      }
      if (this.inFlight >= this.options.maxConcurrent) {
        await this.waitForSlot(deadline.signal);
        continue;
      }
      const now = this.clock.now();
      this.inFlight += 1;
      this.recordSent(now);
      this.lastSentAt = now;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
        this.recordAnswered(now);
        this.slotWaiters.shift()?.();
      };
    }
  }

  /** Waits until a request could be sent now, without taking a slot (for coalescing lookups). */
  async ready(deadline: Deadline): Promise<void> {
    for (;;) {
      deadline.check();
      const waitMs = this.waitMs(deadline);
      if (waitMs <= 0) return;
      await this.clock.sleep(waitMs, deadline.signal);
    }
  }

  /** No request before `until` (Retry-After, 423 Locked, a 429 without a header). */
  block(until: number, reason: string): void {
    if (until > this.blockedUntil) {
      this.blockedUntil = until;
      this.blockReason = reason;
    }
  }

  /** Stop all calls until `until`; `make` builds the error each refused write gets. */
  pauseForQuota(until: number, make: (retryAt: Date) => SyncError): void {
    if (this.quota === undefined || until > this.quota.until) this.quota = { until, make };
  }

  /**
   * A rolling-window limit as the CRM reports it after a request (HubSpot's
   * X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds). Below the
   * reserve the next requests are spread over the window, more thinly the
   * less is left, rather than spent at once and answered with 429.
   */
  observeWindow(limit: number, remaining: number, intervalMs: number): void {
    if (!(limit > 0) || !(intervalMs > 0)) return;
    this.window = { limit, intervalMs };
    const reserve = Math.max(1, Math.ceil(limit * (1 - this.headroom)));
    this.spacingMs = remaining <= reserve ? (intervalMs / limit) * (reserve / Math.max(remaining, 0.5)) : 0;
  }

  /**
   * A long-window budget (Salesforce's 24-hour API request count). Past the
   * headroom the remaining requests are spread evenly over the window, so a
   * busy day slows the sync down instead of stopping it (and every other
   * integration of the org) at the limit.
   */
  observeBudget(used: number, limit: number, windowMs: number, onSpent: () => void): void {
    if (!(limit > 0)) return;
    const remaining = limit - used;
    if (remaining <= 0) {
      onSpent();
      return;
    }
    this.spacingMs = used >= limit * this.headroom ? windowMs / remaining : 0;
  }

  private waitMs(deadline: Deadline): number {
    const now = this.clock.now();
    this.assertNotPaused();
    const until = Math.max(this.blockedUntil, this.lastSentAt + this.spacingMs, this.windowFreeAt(now));
    if (until <= now) return 0;
    const reason = until === this.blockedUntil && this.blockReason !== '' ? this.blockReason : 'rate limit';
    const waitMs = until - now;
    if (waitMs > Math.min(this.maxInlineWaitMs, deadline.remainingMs())) {
      throw new SyncError(
        'transient',
        `${this.options.name} is holding requests until ${new Date(until).toISOString()} (${reason})`,
        { retryAt: new Date(until), crmCode: 'PACED' },
      );
    }
    return waitMs;
  }

  /** Requests remembered for the sliding window (bounded: at most one window's worth). */
  get trackedRequests(): number {
    return this.sentAt.length;
  }

  /**
   * Only a window needs the send times, and only those still inside it:
   * without one (Salesforce) nothing is kept, with one the list is trimmed
   * here as well as when read, so a long-lived process does not accumulate
   * a timestamp per request.
   */
  private recordSent(now: number): void {
    const window = this.window;
    if (window === undefined) return;
    this.sentAt.push(now);
    while (this.sentAt.length > 0 && ((this.sentAt[0] ?? 0) <= now - window.intervalMs || this.sentAt.length > window.limit)) this.sentAt.shift();
  }

  /**
   * The CRM counts a request when it arrives, somewhere between our send and
   * its answer. Counting it from the answer keeps the window honest however
   * long requests take in transit: otherwise a burst sent exactly one
   * interval after the previous one can reach the CRM inside its window.
   */
  private recordAnswered(sentAt: number): void {
    if (this.window === undefined) return;
    const index = this.sentAt.indexOf(sentAt);
    if (index >= 0) this.sentAt.splice(index, 1);
    this.sentAt.push(this.clock.now());
  }

  private windowFreeAt(now: number): number {
    const window = this.window;
    if (window === undefined) return now;
    while (this.sentAt.length > 0 && (this.sentAt[0] ?? 0) <= now - window.intervalMs) this.sentAt.shift();
    const capacity = Math.max(1, Math.floor(window.limit * this.headroom));
    if (this.sentAt.length < capacity) return now;
    const oldestThatMustLeave = this.sentAt[this.sentAt.length - capacity] ?? now;
    return oldestThatMustLeave + window.intervalMs;
  }

  private waitForSlot(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = this.slotWaiters.indexOf(wake);
        if (index >= 0) this.slotWaiters.splice(index, 1);
        reject(signal.reason);
      };
      const wake = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      this.slotWaiters.push(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}
