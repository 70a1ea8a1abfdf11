import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Metrics } from '../metrics';
import { type IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { type MemoryTarget, transient } from '../../test/support/memory-target';
import { stubMappings, SyncWorkerHarness, workerConfig } from '../../test/support/sync-worker';
import { SyncWorker } from './loop';

/**
 * The sync worker's leases and shutdown: a lease taken over or lost mid-write,
 * lease renewal while a write outlasts it, and what stop does with a write in
 * flight. Shared setup: test/support/sync-worker.ts.
 */
describe.each(testDbKinds())('sync worker on %s', (kind) => {
  const h = new SyncWorkerHarness();
  const { worker, event, callRow, attemptsOf, logger, workers } = h;
  let testDb: TestDatabase;
  let ingest: IngestQueue;
  let target: MemoryTarget;
  let metrics: Metrics;

  beforeAll(async () => {
    testDb = await h.open(kind);
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    ({ ingest, target, metrics } = await h.reset());
  });
  afterEach(async () => {
    await h.stopWorkers();
  });

  it('leaves a call alone when its lease was taken over by another worker', async () => {
    await ingest.submit(event('lease', 'call-ended'));
    const slow = worker();
    target.inject(async () => {
      // Simulate our lease expiring mid-write and another worker claiming the call.
      await testDb.database.query(`UPDATE call_syncs SET locked_by = 'someone-else' WHERE call_key = 'lease'`);
      return undefined;
    });
    await slow.runOnce();
    expect(await callRow('lease')).toMatchObject({ status: 'pending', locked_by: 'someone-else' });
  });

  it('renews the lease while a write outlasts it, so no other worker takes the call and the write is not abandoned', async () => {
    await ingest.submit(event('slow', 'call-ended'));
    const a = worker({ SYNC_LEASE_SECONDS: 1 });
    const b = worker({ SYNC_LEASE_SECONDS: 1 });
    target.inject(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 2_500)));
    const writing = a.runOnce();
    // Well past the 1 s lease: without renewal, b would claim and write the call too.
    await new Promise((resolve) => setTimeout(resolve, 1_800));
    expect(await b.runOnce()).toBe(0);
    expect(await writing).toBe(1);
    expect(await callRow('slow')).toMatchObject({ status: 'synced', last_error: null });
    expect(target.records.get('hcc:slow')?.writes).toBe(1);
    expect(target.concurrentSameCall).toBe(0);
  });

  it('on stop, aborts a write past the deadline and releases the call: due at once, no attempt used', async () => {
    await ingest.submit(event('stop', 'call-ended'));
    // What an earlier real attempt left.
    await testDb.database.query(`UPDATE call_syncs SET last_error = 'Service Unavailable', last_error_kind = 'transient', last_http_status = 503 WHERE call_key = 'stop'`);
    const w = worker({ WORKER_SHUTDOWN_MS: 100 });
    const { promise: writing, resolve: started } = deferred();
    target.inject(() => {
      started();
      return new Promise(() => {}); // never answers
    });
    await w.start();
    await writing;
    const stopping = Date.now();
    await w.stop(100);
    expect(Date.now() - stopping).toBeLessThan(2_000);
    const row = await callRow('stop');
    // The call's last real error stays on show; the release is in the history.
    expect(row).toMatchObject({ status: 'pending', locked_by: null, last_error: 'Service Unavailable', last_error_kind: 'transient', last_http_status: 503, attempts: 0 });
    expect(row?.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
    expect(await attemptsOf('stop')).toEqual([{ attempt: 1, outcome: 'released', error_kind: 'transient', http_status: null }]);
    const [released] = await testDb.database.query<{ error: string }>(
      `SELECT a.error FROM sync_attempts a JOIN call_syncs c ON c.id = a.call_sync_id WHERE c.call_key = 'stop'`,
    );
    expect(released?.error).toBe('write abandoned: the worker is shutting down');
    expect(await testDb.database.query(`SELECT attempts FROM webhook_events WHERE call_key = 'stop'`)).toEqual([{ attempts: 0 }]);
  });

  it('on stop, finishes a write that ends before the deadline', async () => {
    await ingest.submit(event('finish', 'call-ended'));
    const w = worker();
    const { promise: writing, resolve: started } = deferred();
    target.inject(async () => {
      started();
      await new Promise((resolve) => setTimeout(resolve, 300));
      return undefined;
    });
    await w.start();
    await writing;
    await w.stop(5_000);
    expect(await callRow('finish')).toMatchObject({ status: 'synced', locked_by: null });
    expect(target.records.get('hcc:finish')?.writes).toBe(1);
  });

  it('does not re-send a write whose lease was lost, and leaves the call to its new owner', async () => {
    await ingest.submit(event('lost', 'call-ended'));
    const w = worker({ SYNC_LEASE_SECONDS: 60 });
    target.inject(async () => {
      // Our lease expired (a stall) and another worker claimed the call, then the write timed out.
      await testDb.database.query(`UPDATE call_syncs SET locked_by = 'other-worker#1' WHERE call_key = 'lost'`);
      throw transient('timeout');
    });
    expect(await w.runOnce()).toBe(1);
    // The quick retry confirms the lease first: no second request.
    expect(target.batches).toHaveLength(1);
    expect(target.records.has('hcc:lost')).toBe(false);
    expect(await callRow('lost')).toMatchObject({ status: 'pending', locked_by: 'other-worker#1', attempts: 0 });
    expect(await attemptsOf('lost')).toEqual([]);
  });

  it('abandons a write in flight when a renewal finds the lease taken', async () => {
    await ingest.submit(event('taken', 'call-ended'));
    const w = worker({ SYNC_LEASE_SECONDS: 1 });
    target.inject(async () => {
      await testDb.database.query(`UPDATE call_syncs SET locked_by = 'other-worker#1' WHERE call_key = 'taken'`);
      return new Promise(() => {}); // never answers
    });
    const started = Date.now();
    expect(await w.runOnce()).toBe(1);
    // The first renewal (a third of the lease) finds the lease gone and aborts the write.
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(target.batches).toHaveLength(1);
    expect(await callRow('taken')).toMatchObject({ locked_by: 'other-worker#1', attempts: 0 });
  });

  it('abandons a write when renewals hang for two thirds of a lease', async () => {
    await ingest.submit(event('hung', 'call-ended'));
    let hang = false;
    const hanging: typeof testDb.database = {
      ...testDb.database,
      query: (text, params, options) => (hang && text.includes('locked_until = now()') && !text.includes('FOR UPDATE') ? new Promise(() => {}) : testDb.database.query(text, params, options)),
    };
    const w = new SyncWorker({ database: hanging, mappings: { current: () => stubMappings }, target, config: workerConfig({ SYNC_LEASE_SECONDS: 1 }), logger, metrics });
    workers.push(w);
    target.inject(() => {
      hang = true;
      return new Promise(() => {}); // never answers
    });
    const started = Date.now();
    expect(await w.runOnce()).toBe(1);
    expect(Date.now() - started).toBeLessThan(2_500);
    expect(target.batches).toHaveLength(1);
  });
});

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
