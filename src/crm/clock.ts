/**
 * Time as the targets see it. Pacing, Retry-After, quota pauses and cache
 * expiry all read this clock, so tests can move time forward instead of
 * sleeping; network timeouts stay on real timers (see deadline.ts).
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
};

/**
 * A clock for tests: time only moves when told to, and `sleep` advances it
 * at once (yielding to the event loop first, so other work interleaves as it
 * would in real time).
 */
export class ManualClock implements Clock {
  constructor(private current = Date.UTC(2025, 0, 15, 12, 0, 0)) {}

  now(): number {
    return this.current;
  }

  advance(ms: number): void {
    this.current += ms;
  }

  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw signal.reason;
    if (ms > 0) this.current += ms;
  }
}
