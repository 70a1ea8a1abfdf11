import type { Clock } from '../../src/core/time';

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
