/**
 * Counts failures per key (a client's address) in fixed windows, in memory.
 *
 * The admin uses it twice: failed page logins (after `maxFailures` in a
 * window the address may not try again until the window ends: the token
 * cannot be guessed by volume, and the audit table gets at most that many
 * rows per address), and failed API bearer attempts (only their audit rows
 * are capped; the answer stays 401).
 *
 * Per process: with several web processes an address gets `maxFailures` at
 * each, still a handful. At most `maxKeys` addresses are tracked; past that
 * the oldest windows are forgotten first, so a spray of addresses cannot
 * grow the map without bound.
 */
export interface FailureLimiterOptions {
  maxFailures: number;
  windowMs: number;
  maxKeys?: number;
}

interface Window {
  startedAt: number;
  failures: number;
}

export class FailureLimiter {
  private readonly windows = new Map<string, Window>();
  private readonly maxKeys: number;

  constructor(
    private readonly options: FailureLimiterOptions,
    private readonly now: () => Date,
  ) {
    this.maxKeys = options.maxKeys ?? 10_000;
  }

  get maxFailures(): number {
    return this.options.maxFailures;
  }

  /** Seconds until `key` may try again, or 0 when it may now. */
  retryAfterSeconds(key: string): number {
    const window = this.current(key);
    if (!window || window.failures < this.options.maxFailures) return 0;
    return Math.max(1, Math.ceil((window.startedAt + this.options.windowMs - this.now().getTime()) / 1000));
  }

  /** Counts one failure; answers the failures of `key` in the current window, this one included. */
  fail(key: string): number {
    const at = this.now().getTime();
    let window = this.current(key);
    if (!window) {
      this.makeRoom(at);
      window = { startedAt: at, failures: 0 };
    }
    window.failures += 1;
    // Re-inserting keeps the map in order of last failure, so makeRoom drops the stalest first.
    this.windows.delete(key);
    this.windows.set(key, window);
    return window.failures;
  }

  /** A success ends the key's window (a legitimate admin who mistyped once starts afresh). */
  reset(key: string): void {
    this.windows.delete(key);
  }

  private current(key: string): Window | undefined {
    const window = this.windows.get(key);
    if (window && window.startedAt + this.options.windowMs <= this.now().getTime()) {
      this.windows.delete(key);
      return undefined;
    }
    return window;
  }

  private makeRoom(at: number): void {
    if (this.windows.size < this.maxKeys) return;
    for (const [key, window] of this.windows) {
      if (window.startedAt + this.options.windowMs <= at) this.windows.delete(key);
    }
    for (const key of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break;
      this.windows.delete(key);
    }
  }
}

/** The client address a limiter keys on (see clientAddress: the socket's, or behind TRUST_PROXY_HOPS the client's). */
export function limiterKey(ip: string | null): string {
  return ip ?? 'unknown';
}
