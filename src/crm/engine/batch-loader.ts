import type { Logger } from '../../log';
import { SyncError } from '../../core/errors';
import type { TtlCache } from './ttl-cache';
import { Deadline } from './deadline';

/**
 * Resolves lookup keys (phone numbers, emails) in batches shared by every
 * write in flight: a key already cached costs nothing, a key another write is
 * already fetching is awaited rather than fetched twice, and keys asked for
 * while the CRM's limiter holds the next request back pile up and go out
 * together. Under load this is what keeps lookups far below one request per
 * call (HubSpot allows only ~5 searches a second).
 */
export interface BatchLoaderOptions<V> {
  crm: string;
  cache: TtlCache<V>;
  /** How long a fetched value stays fresh (e.g. shorter for "not found"). */
  ttlMs: (value: V) => number;
  maxKeysPerFetch: number;
  /** Resolves when a request could go out now; keys gather while it waits. */
  ready?: (deadline: Deadline) => Promise<void>;
  /** Answers every key it is given (a "not found" value included). */
  fetch: (keys: string[], deadline: Deadline) => Promise<Map<string, V>>;
  timeoutMs: number;
}

/** What loadMany answers: a value for each key, and which of them the cache served. */
export interface Loaded<V> {
  values: Map<string, V>;
  /**
   * Keys answered from the cache rather than fetched during this load (by it,
   * or by another load it joined): their value may have gone stale since.
   */
  cached: ReadonlySet<string>;
}

interface Pending<V> {
  key: string;
  resolve: (value: V) => void;
  reject: (err: unknown) => void;
}

export class BatchLoader<V> {
  private readonly inflight = new Map<string, Promise<V>>();
  private pending: Array<Pending<V>> = [];
  private dispatchScheduled = false;

  constructor(private readonly options: BatchLoaderOptions<V>) {}

  async loadMany(keys: Iterable<string>, deadline: Deadline): Promise<Loaded<V>> {
    const result = new Map<string, V>();
    const fromCache = new Set<string>();
    const waits: Array<Promise<void>> = [];
    for (const key of new Set(keys)) {
      const cached = this.options.cache.get(key);
      if (cached !== undefined) {
        result.set(key, cached);
        fromCache.add(key);
        continue;
      }
      const promise = this.inflight.get(key) ?? this.enqueue(key);
      waits.push(
        promise.then((value) => {
          result.set(key, value);
        }),
      );
    }
    if (waits.length > 0) await deadline.race(Promise.all(waits));
    return { values: result, cached: fromCache };
  }

  /** Drops a cached value the CRM has since refused, so the next load asks again. */
  forget(key: string): void {
    this.options.cache.delete(key);
  }

  private enqueue(key: string): Promise<V> {
    const promise = new Promise<V>((resolve, reject) => {
      this.pending.push({ key, resolve, reject });
    });
    // A writer that gave up (deadline) no longer awaits this; keep it from
    // surfacing as an unhandled rejection.
    promise.catch(() => undefined);
    this.inflight.set(key, promise);
    if (!this.dispatchScheduled) {
      this.dispatchScheduled = true;
      queueMicrotask(() => void this.dispatch());
    }
    return promise;
  }

  private async dispatch(): Promise<void> {
    const deadline = new Deadline(this.options.timeoutMs, this.options.crm);
    try {
      if (this.options.ready !== undefined) await this.options.ready(deadline);
    } catch (err) {
      this.dispatchScheduled = false;
      this.settle(this.pending.splice(0), err);
      return;
    } finally {
      deadline.dispose();
    }
    this.dispatchScheduled = false;
    const batch = this.pending.splice(0);
    for (let i = 0; i < batch.length; i += this.options.maxKeysPerFetch) {
      void this.run(batch.slice(i, i + this.options.maxKeysPerFetch));
    }
  }

  private async run(chunk: Array<Pending<V>>): Promise<void> {
    const deadline = new Deadline(this.options.timeoutMs, this.options.crm);
    try {
      const values = await deadline.race(
        this.options.fetch(
          chunk.map((p) => p.key),
          deadline,
        ),
      );
      for (const p of chunk) {
        const value = values.get(p.key);
        this.inflight.delete(p.key);
        if (value === undefined) {
          p.reject(new Error(`lookup answered nothing for a key`));
          continue;
        }
        this.options.cache.set(p.key, value, this.options.ttlMs(value));
        p.resolve(value);
      }
    } catch (err) {
      this.settle(chunk, err);
    } finally {
      deadline.dispose();
    }
  }

  private settle(chunk: Array<Pending<V>>, err: unknown): void {
    for (const p of chunk) {
      this.inflight.delete(p.key);
      p.reject(err);
    }
  }
}

/**
 * A lookup the CRM refuses outright (a field or object the org or portal
 * does not have: permanent or mapping) leaves the reference unset rather
 * than failing the call; anything retryable still fails the write, so the
 * worker tries again.
 */
export async function tolerateRefusedLookup<V>(
  promise: Promise<Loaded<V>>,
  logger: Logger,
  crm: string,
  what: string,
): Promise<Loaded<V>> {
  try {
    return await promise;
  } catch (err) {
    if (err instanceof SyncError && !err.retryable) {
      logger.warn({ lookup: what, crmCode: err.crmCode, httpStatus: err.httpStatus }, `${crm} lookup refused; leaving the reference unset`);
      return { values: new Map(), cached: new Set() };
    }
    throw err;
  }
}

/** A lookup's answer: the id found (null for none), and how many records matched (more than one: ambiguous). */
export interface IdHit {
  id: string | null;
  candidates: number;
}

/** The loader for `key` (a lookup by field: one per object and field), made on first use. */
export function loaderFor<V>(loaders: Map<string, BatchLoader<V>>, key: string, make: () => BatchLoader<V>): BatchLoader<V> {
  let loader = loaders.get(key);
  if (loader === undefined) {
    loader = make();
    loaders.set(key, loader);
  }
  return loader;
}

/** "Not found" is kept briefly whatever the TTL: someone may create the contact while the call is on. */
export const NEGATIVE_LOOKUP_TTL_CAP_MS = 60_000;

/** How long a lookup's answer stays fresh: `ttlMs` for a match, at most a minute for "not found". */
export function lookupTtlMs(found: boolean, ttlMs: number): number {
  return found ? ttlMs : Math.min(ttlMs, NEGATIVE_LOOKUP_TTL_CAP_MS);
}

/** A call refused for a looked-up id its cache served is tried again this soon, the lookup run afresh. */
export const STALE_LOOKUP_RETRY_MS = 5_000;

/** A looked-up value the CRM named in its refusal of a record. */
export interface RefusedLookup {
  /** The field or property the value was for (WhoId, hubspot_owner_id, contact...). */
  name: string;
  /** Served by the cache rather than looked up during this write. */
  cached: boolean;
  /** Drops the value from its loader's cache. */
  forget: () => void;
}

/**
 * The CRM refused ids our lookups produced (a Contact merged or deleted, a
 * User or owner deactivated). Every such value is dropped from the cache.
 * When one of them came from the cache it may simply have gone stale within
 * its TTL: the call is retried soon (transient), when the lookup runs afresh.
 * When all were looked up afresh in this very write, the CRM refuses what it
 * answers right now and a retry would only look the same id up again: the
 * refusal stands, with the CRM's message and kind.
 */
export function unlessStaleLookup(error: SyncError, refused: readonly RefusedLookup[], now: number): SyncError {
  for (const lookup of refused) lookup.forget();
  const stale = refused.filter((lookup) => lookup.cached);
  if (stale.length === 0) return error;
  return error.recast(
    'transient',
    `${error.message}; ${stale.map((s) => s.name).join(', ')} came from a cached lookup that is no longer valid, looked up again on the next attempt`,
    new Date(now + STALE_LOOKUP_RETRY_MS),
  );
}
