import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/support/db';
import { createLogger } from '../log';
import { RetentionJob } from '../worker/retention-schedule';
import { deleteExpiredBatch } from './purge-expired';

describe.each(testDbKinds())('retention on %s', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });

  it('deletes old synced calls and ignored events in batches, and keeps failed, pending and recent ones', async () => {
    const db = testDb.database;
    await db.query('TRUNCATE webhook_events, call_syncs, sync_attempts RESTART IDENTITY CASCADE');
    const addCall = async (key: string, status: string, ageDays: number, eventStatus: string) => {
      await db.query(
        `INSERT INTO call_syncs (source, call_key, status, updated_at) VALUES ('hcc', $1, $2, now() - make_interval(days => $3))`,
        [key, status, ageDays],
      );
      await db.query(
        `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, received_at, raw_body, payload, headers, status)
         VALUES ('hcc', 'call-ended', $1, $1, now() - make_interval(days => $2), '{}', '{}', '{}', $3)`,
        [key, ageDays, eventStatus],
      );
    };
    for (let i = 0; i < 5; i += 1) await addCall(`old-synced-${i}`, 'synced', 40, 'synced');
    await addCall('old-failed', 'failed', 40, 'failed');
    await addCall('old-pending', 'pending', 40, 'pending');
    await addCall('new-synced', 'synced', 1, 'synced');
    await db.query(
      `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, received_at, raw_body, payload, headers, status)
       VALUES ('enreach', 'QueueStatus', 'q-old', 'event:q-old', now() - interval '40 days', '{}', '{}', '{}', 'ignored'),
              ('enreach', 'QueueStatus', 'q-new', 'event:q-new', now(), '{}', '{}', '{}', 'ignored')`,
    );

    expect(await deleteExpiredBatch(db, { days: 30, batchSize: 3 })).toEqual({ calls: 3, events: 4 });
    expect(await deleteExpiredBatch(db, { days: 30, batchSize: 3 })).toEqual({ calls: 2, events: 2 });
    expect(await deleteExpiredBatch(db, { days: 30, batchSize: 3 })).toEqual({ calls: 0, events: 0 });

    const calls = await db.query<{ call_key: string }>('SELECT call_key FROM call_syncs ORDER BY call_key');
    expect(calls.map((c) => c.call_key)).toEqual(['new-synced', 'old-failed', 'old-pending']);
    const events = await db.query<{ dedupe_key: string }>('SELECT dedupe_key FROM webhook_events ORDER BY dedupe_key');
    expect(events.map((e) => e.dedupe_key)).toEqual(['new-synced', 'old-failed', 'old-pending', 'q-new']);
  });

  it('runs batch after batch until nothing expired is left: discarded calls and every event of a purged call go too', async () => {
    const db = testDb.database;
    await db.query('TRUNCATE webhook_events, call_syncs, sync_attempts RESTART IDENTITY CASCADE');
    const addEvent = (key: string, dedupe: string, ageDays: number, status: string) =>
      db.query(
        `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, received_at, raw_body, payload, headers, status)
         VALUES ('hcc', 'call-ended', $1, $2, now() - make_interval(days => $3), '{}', '{}', '{}', $4)`,
        [dedupe, key, ageDays, status],
      );
    const addCall = async (key: string, status: string, ageDays: number, eventStatuses: string[]) => {
      await db.query(
        `INSERT INTO call_syncs (source, call_key, status, updated_at) VALUES ('hcc', $1, $2, now() - make_interval(days => $3))`,
        [key, status, ageDays],
      );
      for (const [i, eventStatus] of eventStatuses.entries()) await addEvent(key, `${key}-${i}`, ageDays, eventStatus);
    };
    for (let i = 0; i < 7; i += 1) await addCall(`old-synced-${i}`, 'synced', 40, ['synced', 'ignored']);
    // An event an admin discarded, of a call that synced later on.
    await addCall('old-synced-with-discarded', 'synced', 40, ['synced', 'discarded']);
    await addCall('old-discarded', 'discarded', 40, ['discarded', 'discarded']);
    await addCall('new-discarded', 'discarded', 2, ['discarded']);
    await addCall('old-failed', 'failed', 40, ['failed']);

    const job = new RetentionJob(db, { days: 30, intervalMs: 60_000, batchSize: 3, pauseMs: 1 }, createLogger({ level: 'silent' }));
    expect(await job.runOnce()).toEqual({ calls: 9, events: 18 });
    expect(await job.runOnce()).toEqual({ calls: 0, events: 0 });

    const calls = await db.query<{ call_key: string }>('SELECT call_key FROM call_syncs ORDER BY call_key');
    expect(calls.map((c) => c.call_key)).toEqual(['new-discarded', 'old-failed']);
    const events = await db.query<{ dedupe_key: string }>('SELECT dedupe_key FROM webhook_events ORDER BY dedupe_key');
    expect(events.map((e) => e.dedupe_key)).toEqual(['new-discarded-0', 'old-failed-0']);
  });
});
