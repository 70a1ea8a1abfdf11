import { describe, expect, it } from 'vitest';
import { createLogger } from '../../log';
import { TtlCache } from './ttl-cache';
import { ManualClock } from '../../../test/support/manual-clock';
import { Deadline } from './deadline';
import { BatchLoader, tolerateRefusedLookup } from './batch-loader';
import { Pacer } from './pacer';
import { SyncError } from '../../core/errors';

const deadline = () => new Deadline(10_000, 'Test');

describe('Pacer', () => {
  it('keeps at most maxConcurrent requests in flight', async () => {
    const pacer = new Pacer({ name: 'Test', clock: new ManualClock(), maxConcurrent: 1 });
    const order: string[] = [];
    const releaseFirst = await pacer.acquire(deadline());
    const second = pacer.acquire(deadline()).then((release) => {
      order.push('second');
      release();
    });
    await new Promise((resolve) => setImmediate(resolve));
    order.push('first done');
    releaseFirst();
    await second;
    expect(order).toEqual(['first done', 'second']);
  });

  it('allows a share of the announced window, then holds requests until the window moves', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ name: 'Test', clock, maxConcurrent: 10, window: { limit: 10, intervalMs: 1_000 }, headroom: 0.5 });
    const start = clock.now();
    for (let i = 0; i < 5; i += 1) (await pacer.acquire(deadline()))();
    expect(clock.now()).toBe(start);
    (await pacer.acquire(deadline()))();
    expect(clock.now()).toBe(start + 1_000); // slept (virtually) until the first left the window
  });

  it('spreads requests when the CRM says little of its window is left', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ name: 'Test', clock, maxConcurrent: 10, headroom: 0.9 });
    pacer.observeWindow(100, 2, 10_000); // reserve is 10: 2 left
    (await pacer.acquire(deadline()))();
    const before = clock.now();
    (await pacer.acquire(deadline()))();
    expect(clock.now() - before).toBe(500); // (10 000 / 100) * (10 / 2)
  });

  it('fails fast with retryAt instead of sleeping past what a write may wait', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ name: 'Test', clock, maxConcurrent: 1, maxInlineWaitMs: 1_000 });
    pacer.block(clock.now() + 60_000, 'HTTP 429 Retry-After');
    await expect(pacer.acquire(deadline())).rejects.toMatchObject({
      kind: 'transient',
      crmCode: 'PACED',
      retryAt: new Date(clock.now() + 60_000),
      message: expect.stringContaining('(HTTP 429 Retry-After)') as unknown,
    });
  });

  it('refuses everything during a quota pause and resumes after it', async () => {
    const clock = new ManualClock();
    const pacer = new Pacer({ name: 'Test', clock, maxConcurrent: 1 });
    const until = clock.now() + 3_600_000;
    pacer.pauseForQuota(until, (retryAt) => new SyncError('quota', 'spent', { retryAt }));
    expect(pacer.pausedUntil()).toEqual(new Date(until));
    await expect(pacer.acquire(deadline())).rejects.toMatchObject({ kind: 'quota', retryAt: new Date(until) });
    clock.advance(3_600_000);
    expect(pacer.pausedUntil()).toBeUndefined();
    (await pacer.acquire(deadline()))();
  });

  it('keeps no send times without a window, and at most a window of them with one (a long-lived process stays bounded)', async () => {
    const clock = new ManualClock();
    const unwindowed = new Pacer({ name: 'Salesforce', clock, maxConcurrent: 10 });
    const windowed = new Pacer({ name: 'HubSpot', clock, maxConcurrent: 10, window: { limit: 100, intervalMs: 10_000 }, headroom: 0.9 });
    for (let i = 0; i < 2_000; i += 1) {
      (await unwindowed.acquire(deadline()))();
      (await windowed.acquire(deadline()))();
      clock.advance(150);
    }
    expect(unwindowed.trackedRequests).toBe(0);
    expect(windowed.trackedRequests).toBeLessThanOrEqual(100);
  });
});

describe('BatchLoader', () => {
  function loader(fetched: string[][], clock = new ManualClock(), fail?: Error) {
    return new BatchLoader<{ id: string | null }>({
      crm: 'Test',
      cache: new TtlCache(clock),
      ttlMs: (v) => (v.id === null ? 1_000 : 60_000),
      maxKeysPerFetch: 3,
      timeoutMs: 5_000,
      fetch: async (keys) => {
        fetched.push(keys);
        if (fail !== undefined) throw fail;
        return new Map(keys.map((k) => [k, { id: k.startsWith('known') ? `id-${k}` : null }]));
      },
    });
  }

  it('merges keys asked for at the same time, splits by size, and answers repeats from the cache, saying which', async () => {
    const fetched: string[][] = [];
    const clock = new ManualClock();
    const l = loader(fetched, clock);
    const [a, b] = await Promise.all([l.loadMany(['known1', 'x'], deadline()), l.loadMany(['x', 'known2', 'known3', 'y'], deadline())]);
    expect(fetched).toEqual([['known1', 'x', 'known2'], ['known3', 'y']]);
    expect(a.values.get('known1')).toEqual({ id: 'id-known1' });
    expect(b.values.get('x')).toEqual({ id: null });
    // Fetched for these loads (b joined a's fetch of x): nothing came from the cache.
    expect([...a.cached, ...b.cached]).toEqual([]);

    const repeat = await l.loadMany(['known1', 'x'], deadline());
    expect(repeat.values.size).toBe(2);
    expect([...repeat.cached].sort()).toEqual(['known1', 'x']);
    expect(fetched).toHaveLength(2);
    clock.advance(1_001); // "not found" expires sooner than a match
    const later = await l.loadMany(['known1', 'x'], deadline());
    expect(fetched[2]).toEqual(['x']);
    expect([...later.cached]).toEqual(['known1']);
  });

  it('forgets a value on request, so the next load fetches it again', async () => {
    const fetched: string[][] = [];
    const l = loader(fetched);
    await l.loadMany(['known1'], deadline());
    l.forget('known1');
    await l.loadMany(['known1'], deadline());
    expect(fetched).toEqual([['known1'], ['known1']]);
  });

  it('leaves a reference unset when the CRM refuses the lookup for good (permanent or mapping), not when it may pass', async () => {
    const logger = createLogger({ level: 'silent' });
    for (const kind of ['permanent', 'mapping'] as const) {
      const refused = await tolerateRefusedLookup(Promise.reject(new SyncError(kind, 'no such property')), logger, 'Test', 'field');
      expect(refused.values.size).toBe(0);
    }
    await expect(tolerateRefusedLookup(Promise.reject(new SyncError('transient', 'busy')), logger, 'Test', 'field')).rejects.toMatchObject({ kind: 'transient' });
  });

  it('hands a failed fetch to every writer waiting on it, and caches nothing', async () => {
    const fetched: string[][] = [];
    const l = loader(fetched, new ManualClock(), new SyncError('transient', 'boom'));
    await expect(l.loadMany(['known1'], deadline())).rejects.toMatchObject({ message: 'boom' });
    await expect(l.loadMany(['known1'], deadline())).rejects.toMatchObject({ message: 'boom' });
    expect(fetched).toEqual([['known1'], ['known1']]);
  });
});
