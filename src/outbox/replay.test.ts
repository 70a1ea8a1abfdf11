import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { addEvent, callRow, eventStatuses, seedCall } from '../../test/support/admin';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/support/db';
import { PENDING_CHANNEL } from './pending-channel';
import { BulkReplayError, replayMatching } from './bulk-replay';
import { matchReplay } from './replay-dry-run';
import { loadReplayCandidate } from './replay-candidate';
import { replayCall } from './replay-call';
import { discardCall } from './discard-call';
import { completeSyncs } from './complete-syncs';

describe.each(testDbKinds())('replay and discard SQL on %s', (kind) => {
  let testDb: TestDatabase;
  let notifications = 0;
  let unlisten: () => Promise<void>;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    unlisten = await testDb.database.listen(PENDING_CHANNEL, () => {
      notifications += 1;
    });
  });
  afterAll(async () => {
    await unlisten();
    await testDb.drop();
  });
  beforeEach(async () => {
    await testDb.database.query('TRUNCATE webhook_events, call_syncs, sync_attempts, admin_audit RESTART IDENTITY CASCADE');
    notifications = 0;
  });

  const db = () => testDb.database;
  const waitForNotify = (atLeast: number) => expect.poll(() => notifications, { timeout: 5_000, interval: 20 }).toBeGreaterThanOrEqual(atLeast);

  it('requeues a failed call now with a fresh budget, keeps its error, stores the new fold and wakes the workers', async () => {
    const id = await seedCall(db(), { callKey: 'f1', status: 'failed', attempts: 3, lastError: 'disposition: no label', events: ['synced', 'failed'] });
    const before = Date.now();
    const outcome = await replayCall(db(), id, { dispositionLabel: 'Sale' });
    expect(outcome).toEqual({ outcome: 'done', previousStatus: 'failed', previousAttempts: 3, events: 1, reclassified: 0 });
    const row = await callRow(db(), id);
    expect(row).toMatchObject({ status: 'pending', attempts: 0, locked_by: null, last_error: 'disposition: no label', activity: { dispositionLabel: 'Sale' } });
    expect(row?.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
    expect(row?.next_attempt_at.getTime()).toBeGreaterThanOrEqual(before - 5_000);
    expect(await eventStatuses(db(), 'f1')).toEqual(['synced', 'pending']);
    await waitForNotify(1);
  });

  it('keeps the stored activity when given none', async () => {
    const id = await seedCall(db(), { callKey: 'keep', status: 'failed', activity: { old: true } });
    await replayCall(db(), id, null);
    expect((await callRow(db(), id))?.activity).toEqual({ old: true });
  });

  it('leaves a call alone while a worker holds its lease', async () => {
    const id = await seedCall(db(), { callKey: 'busy', status: 'pending', attempts: 2, leaseSeconds: 60, lockedBy: 'worker-a' });
    const outcome = await replayCall(db(), id, { x: 1 });
    expect(outcome).toMatchObject({ outcome: 'busy', lockedBy: 'worker-a' });
    expect(await callRow(db(), id)).toMatchObject({ status: 'pending', attempts: 2, locked_by: 'worker-a', activity: null });
    expect(await discardCall(db(), id)).toMatchObject({ outcome: 'busy' });
    expect((await callRow(db(), id))?.status).toBe('pending');
  });

  it("clears an expired lease, so the dead worker's late completion cannot overwrite the replay", async () => {
    const id = await seedCall(db(), { callKey: 'stale', status: 'pending', attempts: 1, leaseSeconds: -30, lockedBy: 'dead-worker' });
    expect(await replayCall(db(), id, null)).toMatchObject({ outcome: 'done' });
    expect(await callRow(db(), id)).toMatchObject({ status: 'pending', attempts: 0, locked_by: null, locked_until: null });
    const written = await completeSyncs(db(), 'dead-worker', [
      {
        id,
        source: 'hcc',
        callKey: 'stale',
        claimedVersion: 1,
        maxEventId: 1,
        outcome: 'failed',
        attempt: 2,
        target: 'dry-run',
        startedAt: new Date(),
        countsAsAttempt: true,
        errorKind: 'permanent',
        error: 'late',
      },
    ]);
    expect(written).toEqual([]);
    expect(await callRow(db(), id)).toMatchObject({ status: 'pending', attempts: 0 });
  });

  it('answers missing for an unknown id', async () => {
    expect(await replayCall(db(), 999, null)).toEqual({ outcome: 'missing' });
    expect(await discardCall(db(), 999)).toEqual({ outcome: 'missing' });
    expect(await loadReplayCandidate(db(), 999)).toBeUndefined();
  });

  it('discards a call and its unsynced events; a replay brings them back', async () => {
    const id = await seedCall(db(), { callKey: 'd1', status: 'failed', events: ['synced', 'failed', 'pending', 'ignored'] });
    expect(await discardCall(db(), id)).toEqual({ outcome: 'done', previousStatus: 'failed', previousAttempts: 0, events: 2, reclassified: 0 });
    expect((await callRow(db(), id))?.status).toBe('discarded');
    expect(await eventStatuses(db(), 'd1')).toEqual(['synced', 'discarded', 'discarded', 'ignored']);

    const candidate = await loadReplayCandidate(db(), id);
    // The fold for a replay sees the discarded events too (it brings them back); the ignored one is apart, for reclassification.
    expect(candidate?.events.map((e) => e.id)).toEqual([1, 2, 3]);
    expect(candidate?.ignored.map((e) => e.id)).toEqual([4]);
    expect(await replayCall(db(), id, null)).toMatchObject({ outcome: 'done', previousStatus: 'discarded', events: 2 });
    expect(await eventStatuses(db(), 'd1')).toEqual(['synced', 'pending', 'pending', 'ignored']);
  });

  it('refuses to discard a synced call', async () => {
    const id = await seedCall(db(), { callKey: 's1', status: 'synced' });
    expect(await discardCall(db(), id)).toEqual({ outcome: 'synced' });
    expect((await callRow(db(), id))?.status).toBe('synced');
    expect(await eventStatuses(db(), 's1')).toEqual(['synced']);
  });

  it('bulk-replays thousands of calls in batches, honouring source, window and leases', async () => {
    // 1,050 failed hcc calls, a few that must not move, one leased.
    await db().query(
      `INSERT INTO call_syncs (source, call_key, status, attempts, last_error, updated_at)
       SELECT 'hcc', 'bulk-' || g, 'failed', 3, 'boom', now() - interval '1 hour' FROM generate_series(1, 1050) g`,
    );
    await db().query(
      `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, raw_body, payload, headers, status)
       SELECT 'hcc', 'call-ended', 'bulk-' || g, 'bulk-' || g, '{}', '{}'::jsonb, '{}'::jsonb, 'failed' FROM generate_series(1, 1050) g`,
    );
    const otherSource = await seedCall(db(), { source: 'enreach', callKey: 'other', status: 'failed', updatedAtOffset: -3600 });
    const tooOld = await seedCall(db(), { callKey: 'old', status: 'failed', updatedAtOffset: -3 * 86400 });
    const synced = await seedCall(db(), { callKey: 'done', status: 'synced', updatedAtOffset: -3600 });
    const leased = await seedCall(db(), { callKey: 'leased', status: 'failed', leaseSeconds: 60, updatedAtOffset: -3600 });

    const filter = { status: 'failed' as const, source: 'hcc' as const, since: new Date(Date.now() - 2 * 86400_000), until: new Date() };
    const dry = await matchReplay(db(), filter, 100);
    expect(dry).toMatchObject({ count: 1050, skipped: 1 });
    expect(dry.sample).toHaveLength(100);
    expect((await db().query(`SELECT count(*)::int AS n FROM call_syncs WHERE status = 'failed'`))[0]).toEqual({ n: 1053 });

    const progress: number[] = [];
    const result = await replayMatching(testDb.database, filter, { batchSize: 200, onBatch: (p) => progress.push(p.count) });
    expect(result).toEqual({ count: 1050, skipped: 1, events: 1050, reclassified: 0, batches: 6 });
    expect(progress).toEqual([200, 400, 600, 800, 1000, 1050]);
    const counts = await db().query<{ status: string; attempts: number; n: number }>(
      `SELECT status, attempts, count(*)::int AS n FROM call_syncs WHERE call_key LIKE 'bulk-%' GROUP BY status, attempts`,
    );
    expect(counts).toEqual([{ status: 'pending', attempts: 0, n: 1050 }]);
    expect((await db().query(`SELECT count(*)::int AS n FROM webhook_events WHERE call_key LIKE 'bulk-%' AND status = 'pending'`))[0]).toEqual({ n: 1050 });
    expect((await callRow(db(), otherSource))?.status).toBe('failed');
    expect((await callRow(db(), tooOld))?.status).toBe('failed');
    expect((await callRow(db(), synced))?.status).toBe('synced');
    expect(await callRow(db(), leased)).toMatchObject({ status: 'failed', locked_by: 'worker-a' });
    await waitForNotify(1);
  });

  it('ends a bulk replay of pending calls although the replayed rows still match', async () => {
    for (let i = 0; i < 25; i += 1) await seedCall(db(), { callKey: `p${i}`, status: 'pending', attempts: 2 });
    const result = await replayMatching(testDb.database, { status: 'pending' }, { batchSize: 10 });
    expect(result).toEqual({ count: 25, skipped: 0, events: 0, reclassified: 0, batches: 3 });
    expect((await db().query(`SELECT count(*)::int AS n FROM call_syncs WHERE attempts = 0 AND next_attempt_at <= now()`))[0]).toEqual({ n: 25 });
  });

  it('makes the ignored events of a replayed call pending when their type is now synced, and counts them into the call', async () => {
    const id = await seedCall(db(), { callKey: 'r1', status: 'failed', attempts: 2, events: ['failed'] });
    const note = await addEvent(db(), { callKey: 'r1', eventType: 'note-added', status: 'ignored' });
    await addEvent(db(), { callKey: 'r1', eventType: 'agent-log', status: 'ignored' });
    // Another call's ignored event of the same type stays as it is.
    const other = await seedCall(db(), { callKey: 'r2', status: 'failed', events: ['failed'] });
    await addEvent(db(), { callKey: 'r2', eventType: 'note-added', status: 'ignored' });
    expect((await callRow(db(), id))?.version).toBe(1);

    const outcome = await db().transaction((tx) => replayCall(tx, id, null, [{ source: 'hcc', eventType: 'note-added' }]));
    expect(outcome).toEqual({ outcome: 'done', previousStatus: 'failed', previousAttempts: 2, events: 1, reclassified: 1 });
    expect(await eventStatuses(db(), 'r1')).toEqual(['pending', 'pending', 'ignored']);
    expect(await callRow(db(), id)).toMatchObject({ status: 'pending', attempts: 0, version: 2 });
    expect(await eventStatuses(db(), 'r2')).toEqual(['failed', 'ignored']);
    expect((await callRow(db(), other))?.status).toBe('failed');
    // The worker's fold now reads it.
    const candidate = await loadReplayCandidate(db(), id);
    expect(candidate?.events.map((e) => e.id)).toContain(note);
  });

  it('reclassifies in bulk only the calls it replays, with the types the caller says are synced now', async () => {
    const a = await seedCall(db(), { callKey: 'b1', status: 'failed', events: ['failed'] });
    await addEvent(db(), { callKey: 'b1', eventType: 'note-added', status: 'ignored' });
    await addEvent(db(), { callKey: 'b1', eventType: 'agent-log', status: 'ignored' });
    const b = await seedCall(db(), { source: 'enreach', callKey: 'b2', status: 'failed', events: ['failed'] });
    await addEvent(db(), { source: 'enreach', callKey: 'b2', eventType: 'note-added', status: 'ignored' });
    const leased = await seedCall(db(), { callKey: 'b3', status: 'failed', leaseSeconds: 60, events: ['failed'] });
    await addEvent(db(), { callKey: 'b3', eventType: 'note-added', status: 'ignored' });
    const synced = await seedCall(db(), { callKey: 'b4', status: 'synced', events: ['synced'] });
    await addEvent(db(), { callKey: 'b4', eventType: 'note-added', status: 'ignored' });

    const asked: string[] = [];
    const result = await replayMatching(testDb.database, { status: 'failed' }, {
      batchSize: 2,
      // Only hcc's note-added is synced now.
      reclassify: (types) => {
        asked.push(...types.map((t) => `${t.source}/${t.eventType}`));
        return types.filter((t) => t.source === 'hcc' && t.eventType === 'note-added');
      },
    });
    expect(result).toMatchObject({ count: 2, skipped: 1, reclassified: 1 });
    expect(asked.sort()).toEqual(['enreach/note-added', 'hcc/agent-log', 'hcc/note-added']);
    expect(await eventStatuses(db(), 'b1')).toEqual(['pending', 'pending', 'ignored']);
    expect(await callRow(db(), a)).toMatchObject({ status: 'pending', version: 2 });
    expect(await eventStatuses(db(), 'b2', 'enreach')).toEqual(['pending', 'ignored']);
    expect((await callRow(db(), b))?.version).toBe(1);
    expect(await eventStatuses(db(), 'b3')).toEqual(['failed', 'ignored']);
    expect((await callRow(db(), leased))?.status).toBe('failed');
    expect(await eventStatuses(db(), 'b4')).toEqual(['synced', 'ignored']);
    expect((await callRow(db(), synced))?.status).toBe('synced');
  });

  it("runs inBatch in each batch's transaction: when it fails, that batch is not replayed and the error says what was", async () => {
    for (let i = 0; i < 5; i += 1) await seedCall(db(), { callKey: `t${i}`, status: 'failed', events: ['failed'] });
    const seen: Array<{ count: number; done: boolean }> = [];
    const run = replayMatching(testDb.database, { status: 'failed' }, {
      batchSize: 2,
      inBatch: async (tx, progress) => {
        seen.push({ count: progress.count, done: progress.done });
        // What the batch did is visible inside its own transaction...
        const [row] = await tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM call_syncs WHERE status = 'pending'`);
        expect(row?.n).toBe(progress.count);
        if (seen.length === 2) throw new Error('audit insert failed');
      },
    });
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BulkReplayError);
    expect((err as BulkReplayError).partial).toMatchObject({ count: 2, batches: 1 });
    expect(seen).toEqual([
      { count: 2, done: false },
      { count: 4, done: false },
    ]);
    // ...and the failed batch rolled back with it.
    expect((await db().query(`SELECT count(*)::int AS n FROM call_syncs WHERE status = 'pending'`))[0]).toEqual({ n: 2 });

    const finished: Array<{ count: number; done: boolean }> = [];
    await replayMatching(testDb.database, { status: 'failed' }, { batchSize: 2, inBatch: async (_tx, p) => void finished.push({ count: p.count, done: p.done }) });
    expect(finished).toEqual([
      { count: 2, done: false },
      { count: 3, done: true },
    ]);
    const empty: Array<{ count: number; done: boolean }> = [];
    await replayMatching(testDb.database, { status: 'failed' }, { inBatch: async (_tx, p) => void empty.push({ count: p.count, done: p.done }) });
    // Nothing matched: still one (empty) transaction, so the caller's audit row is written there too.
    expect(empty).toEqual([{ count: 0, done: true }]);
  });
});
