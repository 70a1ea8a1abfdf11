import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SyncError } from '../core/errors';
import { type IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { type MemoryTarget, transient } from '../../test/support/memory-target';
import { SyncWorkerHarness } from '../../test/support/sync-worker';

/**
 * The sync worker's failures: in-process retries and the backoff schedule,
 * the attempt budget, CRM rejections, mapping failures (poison events),
 * quota and Retry-After. Shared setup: test/support/sync-worker.ts.
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

  it('retries a transient failure in process, then succeeds', async () => {
    await ingest.submit(event('t1', 'call-ended'));
    target.inject(() => {
      throw transient();
    });
    await worker().runOnce();
    expect(target.records.has('hcc:t1')).toBe(true);
    expect(await callRow('t1')).toMatchObject({ status: 'synced' });
  });

  it('reschedules with backoff, keeps the CRM response, and fails after SYNC_MAX_ATTEMPTS', async () => {
    await ingest.submit(event('t2', 'call-ended'));
    const w = worker({ SYNC_MAX_ATTEMPTS: 2 });
    for (let i = 0; i < 3; i += 1)
      target.inject(() => {
        throw transient('CRM down');
      });
    const before = Date.now();
    await w.runOnce();
    const first = await callRow('t2');
    expect(first).toMatchObject({ status: 'pending', attempts: 1, last_error: 'CRM down', last_error_kind: 'transient', last_http_status: 503, last_response: { message: 'CRM down' } });
    // Equal jitter: between half and all of SYNC_BACKOFF_BASE_MS (60 s).
    expect(first?.next_attempt_at.getTime()).toBeGreaterThanOrEqual(before + 30_000);
    expect(first?.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(await w.runOnce()).toBe(0);

    await testDb.database.query(`UPDATE call_syncs SET next_attempt_at = now() WHERE call_key = 't2'`);
    for (let i = 0; i < 3; i += 1)
      target.inject(() => {
        throw transient('CRM still down');
      });
    await w.runOnce();
    expect(await callRow('t2')).toMatchObject({ status: 'failed', attempts: 2, last_error: 'CRM still down' });
    expect(await eventStatuses('t2')).toEqual(['failed']);
    expect(await attemptsOf('t2')).toEqual([
      { attempt: 1, outcome: 'retry', error_kind: 'transient', http_status: 503 },
      { attempt: 2, outcome: 'failed', error_kind: 'transient', http_status: 503 },
    ]);
  });

  it('fails a record the CRM rejects and writes the others of the batch', async () => {
    await Promise.all([ingest.submit(event('ok1', 'call-ended')), ingest.submit(event('bad', 'call-ended')), ingest.submit(event('ok2', 'call-ended'))]);
    target.inject((items) =>
      items.map((item) =>
        item.externalId === 'hcc:bad'
          ? { ok: false as const, error: new SyncError('permanent', 'Subject: data value too large', { crmCode: 'STRING_TOO_LONG', httpStatus: 400 }) }
          : { ok: true as const, ids: { [item.externalId]: `id-${item.externalId}` }, created: true, sent: {} },
      ),
    );
    await worker().runOnce();
    expect(await callRow('bad')).toMatchObject({ status: 'failed', attempts: 1, last_error: 'Subject: data value too large', last_error_kind: 'permanent' });
    expect(await callRow('ok1')).toMatchObject({ status: 'synced', crm_id: 'id-hcc:ok1' });
    expect(await callRow('ok2')).toMatchObject({ status: 'synced', crm_id: 'id-hcc:ok2' });
  });

  it('fails only the call whose mapping throws (a poison event)', async () => {
    await Promise.all([ingest.submit(event('poison', 'call-ended', { poison: true })), ingest.submit(event('fine', 'call-ended'))]);
    await worker().runOnce();
    expect(await callRow('poison')).toMatchObject({ status: 'failed', last_error: 'mapping failed: field "x": boom', last_error_kind: 'mapping' });
    expect(await callRow('fine')).toMatchObject({ status: 'synced' });
    expect(target.batches).toEqual([['hcc:fine']]);
  });

  it('keeps the fold and payload of the last attempt: none after a mapping failure', async () => {
    await ingest.submit(event('turns-bad', 'call-created'));
    const w = worker();
    await w.runOnce();
    expect(await callRow('turns-bad')).toMatchObject({ status: 'synced', activity: { notes: 'call-created' } });
    expect((await callRow('turns-bad'))?.crm_payload).not.toBeNull();
    await ingest.submit(event('turns-bad', 'call-ended', { poison: true }));
    await w.runOnce();
    expect(await callRow('turns-bad')).toMatchObject({ status: 'failed', last_error_kind: 'mapping', activity: null, crm_payload: null });
  });

  it('waits out a spent quota without using up attempts', async () => {
    await ingest.submit(event('q1', 'call-ended'));
    const reset = new Date(Date.now() + 3_600_000);
    target.inject(() => {
      throw new SyncError('quota', 'REQUEST_LIMIT_EXCEEDED: TotalRequests Limit exceeded.', { retryAt: reset, httpStatus: 403 });
    });
    await worker().runOnce();
    const row = await callRow('q1');
    expect(row).toMatchObject({ status: 'pending', attempts: 0, last_error_kind: 'quota' });
    expect(row?.next_attempt_at.getTime()).toBeGreaterThanOrEqual(reset.getTime());
  });

  it('leaves a long Retry-After to the durable schedule instead of waiting it out in process', async () => {
    await ingest.submit(event('slowdown', 'call-ended'));
    const retryAt = new Date(Date.now() + 60_000);
    target.inject(() => {
      throw new SyncError('transient', 'REQUEST_LIMIT_EXCEEDED_RATE', { httpStatus: 429, retryAt });
    });
    const started = Date.now();
    await worker().runOnce();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(target.batches).toHaveLength(1);
    const row = await callRow('slowdown');
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_http_status: 429 });
    expect(row?.next_attempt_at.getTime()).toBeGreaterThanOrEqual(retryAt.getTime());
  });

  it('waits out a short Retry-After in process, then retries', async () => {
    await ingest.submit(event('brief', 'call-ended'));
    const retryAt = new Date(Date.now() + 1_000);
    target.inject(() => {
      throw new SyncError('transient', 'Too Many Requests', { httpStatus: 429, retryAt });
    });
    await worker().runOnce();
    expect(Date.now()).toBeGreaterThanOrEqual(retryAt.getTime());
    expect(target.batches).toHaveLength(2);
    expect(await callRow('brief')).toMatchObject({ status: 'synced', attempts: 0 });
  });

  it('gives a call whose last attempt failed while a new event arrived a fresh budget', async () => {
    await ingest.submit(event('budget', 'call-ended'));
    const w = worker({ SYNC_MAX_ATTEMPTS: 1 });
    for (let i = 0; i < 3; i += 1)
      target.inject(async () => {
        if (i === 2) await ingest.submit(event('budget', 'call-saved'));
        throw transient('CRM down');
      });
    await w.runOnce();
    expect(await callRow('budget')).toMatchObject({ status: 'pending', attempts: 0 });
    await w.runOnce();
    expect(await callRow('budget')).toMatchObject({ status: 'synced' });
    expect(target.records.get('hcc:budget')?.fields.Subject).toBe('call-ended,call-saved');
  });

  it('records a CRM response holding NUL characters and lone surrogates', async () => {
    await ingest.submit(event('nul', 'call-ended'));
    target.inject(() => {
      throw new SyncError('permanent', 'bad \u0000 value \ud800', { httpStatus: 400, crmResponse: { message: 'x\u0000y', detail: '\udc00' } });
    });
    await worker().runOnce();
    expect(await callRow('nul')).toMatchObject({
      status: 'failed',
      last_error: 'bad \ufffd value \ufffd',
      last_response: { message: 'x\ufffdy', detail: '\ufffd' },
    });
  });
});
