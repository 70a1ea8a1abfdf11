import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testConfig } from '../config';
import { SyncError } from '../core/errors';
import { createLogger } from '../log';
import { type MappingSet } from '../mapping/mapping-set';
import { MappingError } from '../core/errors';
import { emptyActivity, type CallActivity } from '../core/activity';
import { type StoredEvent } from '../core/event';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { type NewEvent } from '../outbox/insert-events';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget, transient } from '../../test/support/memory-target';
import { SyncWorker, type WorkerConfig } from './loop';

/**
 * The worker's mechanics with a stub mapping (one field per event type seen)
 * and an interface-level target. The real mappings and CRM targets are
 * exercised end to end in test/reliability/ (worker processes against the
 * Salesforce fake) and test/start.e2e.test.ts.
 */
const stubMappings: MappingSet = {
  classify: () => 'sync',
  async fold(source, callKey, events) {
    if (events.some((e) => (e.payload as { poison?: boolean }).poison)) throw new MappingError('field "x": boom');
    return activityOf(source, callKey, events);
  },
  async toCrm(activity) {
    return [
      {
        kind: 'activity',
        object: 'Task',
        externalId: activity.externalId,
        fields: { Subject: activity.notes, CallObject: activity.callKey },
        createOnly: ['TaskSubtype'],
        lookups: {},
      },
    ];
  },
};

function activityOf(source: StoredEvent['source'], callKey: string, events: StoredEvent[]): CallActivity {
  const sorted = [...events].sort((a, b) => a.id - b.id);
  return { ...emptyActivity(source, callKey), notes: sorted.map((e) => e.eventType).join(','), eventIds: sorted.map((e) => e.id) };
}

function workerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  const c = testConfig();
  return {
    SYNC_MAX_ATTEMPTS: 3,
    SYNC_BACKOFF_BASE_MS: 60_000,
    SYNC_BACKOFF_MAX_MS: 3_600_000,
    SYNC_LEASE_SECONDS: c.SYNC_LEASE_SECONDS,
    SYNC_POLL_MS: 60_000,
    SYNC_BATCH_WAIT_MS: 0,
    WORKER_CONCURRENCY: 2,
    WORKER_SHUTDOWN_MS: 2_000,
    ...overrides,
  };
}

describe.each(testDbKinds())('sync worker on %s', (kind) => {
  let testDb: TestDatabase;
  let ingest: IngestQueue;
  let target: MemoryTarget;
  let metrics: Metrics;
  const logger = createLogger({ level: 'silent' });
  const workers: SyncWorker[] = [];

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });
  beforeEach(async () => {
    await testDb.database.query('TRUNCATE webhook_events, call_syncs, sync_attempts RESTART IDENTITY CASCADE');
    metrics = new Metrics();
    ingest = new IngestQueue(testDb.database, { maxBatch: 500, maxInFlight: 2, timeoutMs: 5_000 }, logger, metrics);
    target = new MemoryTarget();
  });
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.stop(1_000)));
  });

  function worker(overrides: Partial<WorkerConfig> = {}, extra: { target?: MemoryTarget; mappings?: MappingSet } = {}): SyncWorker {
    const w = new SyncWorker({
      database: testDb.database,
      mappings: { current: () => extra.mappings ?? stubMappings },
      target: extra.target ?? target,
      config: workerConfig(overrides),
      logger,
      metrics,
    });
    workers.push(w);
    return w;
  }

  let seq = 0;
  function event(callKey: string, eventType: string, payload: Record<string, unknown> = {}): NewEvent {
    seq += 1;
    const body = { callKey, eventType, seq, ...payload };
    return {
      source: 'hcc',
      eventType,
      dedupeKey: `${eventType}:${callKey}:${seq}`,
      callKey,
      vendorTime: null,
      vendorTimeRaw: null,
      receivedAt: new Date(),
      rawBody: JSON.stringify(body),
      payload: body,
      headers: {},
      status: 'pending',
    };
  }

  const callRow = async (callKey: string) =>
    (
      await testDb.database.query<{
        status: string;
        attempts: number;
        next_attempt_at: Date;
        crm_id: string | null;
        last_error: string | null;
        last_error_kind: string | null;
        last_http_status: number | null;
        last_response: unknown;
        locked_by: string | null;
        activity: { notes: string } | null;
        crm_payload: unknown;
      }>('SELECT * FROM call_syncs WHERE call_key = $1', [callKey])
    )[0];
  const eventStatuses = async (callKey: string) =>
    (await testDb.database.query<{ status: string }>('SELECT status FROM webhook_events WHERE call_key = $1 ORDER BY id', [callKey])).map(
      (r) => r.status,
    );
  const attemptsOf = async (callKey: string) =>
    testDb.database.query<{ attempt: number; outcome: string; error_kind: string | null; http_status: number | null }>(
      `SELECT a.attempt, a.outcome, a.error_kind, a.http_status FROM sync_attempts a JOIN call_syncs c ON c.id = a.call_sync_id
       WHERE c.call_key = $1 ORDER BY a.id`,
      [callKey],
    );

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

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}
