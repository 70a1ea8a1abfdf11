import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MappingSet } from '../mapping/mapping-set';
import { type IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget } from '../../test/support/memory-target';
import { stubMappings, SyncWorkerHarness } from '../../test/support/sync-worker';

/**
 * The sync worker's normal path: folding a call's events into one record,
 * waking on NOTIFY and on the poll, batching many calls per request, and
 * never syncing one call twice at once. Shared setup: test/support/sync-worker.ts.
 */
describe.each(testDbKinds())('sync worker on %s', (kind) => {
  const h = new SyncWorkerHarness();
  const { worker, event, callRow, eventStatuses, attemptsOf } = h;
  let testDb: TestDatabase;
  let ingest: IngestQueue;
  let target: MemoryTarget;

  beforeAll(async () => {
    testDb = await h.open(kind);
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    ({ ingest, target } = await h.reset());
  });
  afterEach(async () => {
    await h.stopWorkers();
  });

  it('folds all events of a call into one record, created once and updated in place', async () => {
    await Promise.all([ingest.submit(event('c1', 'call-created')), ingest.submit(event('c1', 'call-ended')), ingest.submit(event('c2', 'call-created'))]);
    const w = worker();
    expect(await w.runOnce()).toBe(2);
    expect(target.batches).toEqual([['hcc:c1', 'hcc:c2']]);
    expect(target.records.get('hcc:c1')?.fields.Subject).toBe('call-created,call-ended');
    expect(await callRow('c1')).toMatchObject({ status: 'synced', attempts: 0, crm_id: target.records.get('hcc:c1')?.id, locked_by: null });
    expect(await eventStatuses('c1')).toEqual(['synced', 'synced']);

    await ingest.submit(event('c1', 'call-saved'));
    expect(await w.runOnce()).toBe(1);
    expect(target.records.get('hcc:c1')).toMatchObject({ fields: { Subject: 'call-created,call-ended,call-saved' }, writes: 2 });
    expect(target.records.size).toBe(2);
    expect(await attemptsOf('c1')).toEqual([
      { attempt: 1, outcome: 'synced', error_kind: null, http_status: null },
      { attempt: 1, outcome: 'synced', error_kind: null, http_status: null },
    ]);
  });

  it('folds an event that arrives during the CRM write into a second sync', async () => {
    await ingest.submit(event('late', 'call-created'));
    target.inject(async () => {
      await ingest.submit(event('late', 'call-saved'));
      return undefined;
    });
    const w = worker();
    await w.runOnce();
    expect(target.records.get('hcc:late')?.fields.Subject).toBe('call-created');
    expect(await callRow('late')).toMatchObject({ status: 'pending' });
    expect(await eventStatuses('late')).toEqual(['synced', 'pending']);
    await w.runOnce();
    expect(target.records.get('hcc:late')?.fields.Subject).toBe('call-created,call-saved');
    expect(await callRow('late')).toMatchObject({ status: 'synced' });
    expect(await eventStatuses('late')).toEqual(['synced', 'synced']);
  });

  it('wakes on NOTIFY when an event is stored, without waiting for the poll', async () => {
    const w = worker({ SYNC_POLL_MS: 600_000 });
    await w.start();
    await ingest.submit(event('wake', 'call-created'));
    await expect.poll(async () => (await callRow('wake'))?.status, { timeout: 5_000, interval: 50 }).toBe('synced');
  });

  it('never syncs one call twice at once across workers and batches many calls per request', async () => {
    const small = new MemoryTarget(20);
    const slowMappings: MappingSet = { ...stubMappings };
    for (let i = 0; i < 120; i += 1) await ingest.submit(event(`m${i % 60}`, i < 60 ? 'call-created' : 'call-ended'));
    small.inject(async () => {
      await new Promise((r) => setTimeout(r, 50));
      return undefined;
    });
    const a = worker({ WORKER_CONCURRENCY: 3 }, { target: small, mappings: slowMappings });
    const b = worker({ WORKER_CONCURRENCY: 3 }, { target: small, mappings: slowMappings });
    await Promise.all([a.start(), b.start()]);
    await expect
      .poll(async () => (await testDb.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM call_syncs WHERE status = 'synced'`))[0]?.n, {
        timeout: 10_000,
        interval: 50,
      })
      .toBe(60);
    expect(small.concurrentSameCall).toBe(0);
    expect(small.records.size).toBe(60);
    for (const record of small.records.values()) expect(record.fields.Subject).toBe('call-created,call-ended');
    expect(Math.max(...small.batches.map((b) => b.length))).toBe(20);
  });

  it('wakes its idle slots when a poll finds a backlog, not one slot at a time', async () => {
    const slow = new MemoryTarget(20);
    for (let i = 0; i < 5; i += 1) slow.inject(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 150)));
    const w = worker({ WORKER_CONCURRENCY: 3, SYNC_POLL_MS: 2_000 }, { target: slow });
    await w.start();
    await new Promise((resolve) => setTimeout(resolve, 200)); // every slot finds nothing and waits
    // Rows written without NOTIFY (as a retry coming due is): only the poll finds them.
    await testDb.database.query(
      `INSERT INTO call_syncs (source, call_key, status, version, next_attempt_at)
       SELECT 'hcc', 'poll-' || g, 'pending', 1, now() FROM generate_series(1, 100) g`,
    );
    await testDb.database.query(
      `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, raw_body, payload, headers)
       SELECT 'hcc', 'call-ended', 'poll-' || g, 'poll-' || g, '{}', '{}', '{}' FROM generate_series(1, 100) g`,
    );
    await expect
      .poll(async () => (await testDb.database.query<{ n: number }>(`SELECT count(*)::int AS n FROM call_syncs WHERE status = 'synced'`))[0]?.n, {
        timeout: 10_000,
        interval: 50,
      })
      .toBe(100);
    // One poll tick woke one slot; its full batch woke the other two (the next tick is 2 s away).
    expect(slow.maxInFlightSeen).toBeGreaterThanOrEqual(2);
  });

  it('uses stored CRM ids only with the target that wrote them', async () => {
    await ingest.submit(event('switch', 'call-ended'));
    await worker().runOnce();
    // The call was last written by another target (a dry-run trial, say).
    await testDb.database.query(`UPDATE call_syncs SET target = 'salesforce', crm_id = 'elsewhere-1' WHERE call_key = 'switch'`);
    await ingest.submit(event('switch', 'call-saved'));
    const seen: Array<Record<string, string>> = [];
    target.inject((items) => {
      seen.push(...items.map((i) => i.knownIds));
      return undefined;
    });
    await worker().runOnce();
    expect(seen).toEqual([{}]);
    expect(await callRow('switch')).toMatchObject({ status: 'synced', crm_id: target.records.get('hcc:switch')?.id });
  });

  it('never marks a call synced without an event committed while it was being claimed (concurrent intake)', async () => {
    const calls = 40;
    const perCall = 6;
    const a = worker({ WORKER_CONCURRENCY: 3, SYNC_POLL_MS: 200 });
    const b = worker({ WORKER_CONCURRENCY: 3, SYNC_POLL_MS: 200 });
    await Promise.all([a.start(), b.start()]);
    for (let round = 0; round < perCall; round += 1) {
      await Promise.all(Array.from({ length: calls }, (_, i) => ingest.submit(event(`race${i}`, `e${round}`))));
    }
    const expected = Array.from({ length: perCall }, (_, round) => `e${round}`).join(',');
    await expect
      .poll(
        async () =>
          (
            await testDb.database.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM call_syncs WHERE call_key LIKE 'race%' AND status = 'synced' AND activity->>'notes' = $1`,
              [expected],
            )
          )[0]?.n,
        { timeout: 15_000, interval: 100 },
      )
      .toBe(calls);
    const stuck = await testDb.database.query(`SELECT 1 FROM webhook_events WHERE call_key LIKE 'race%' AND status <> 'synced'`);
    expect(stuck).toEqual([]);
    for (let i = 0; i < calls; i += 1) expect(target.records.get(`hcc:race${i}`)?.fields.Subject).toBe(expected);
  });
});
