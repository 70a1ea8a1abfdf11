import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../db/client';
import { createLogger } from '../log';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/support/db';
import { IngestQueue } from './ingest';
import { type NewEvent } from './insert-events';

describe.each(testDbKinds())('IngestQueue on %s', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });

  const event = (dedupeKey: string): NewEvent => ({
    source: 'hcc',
    eventType: 'call-ended',
    dedupeKey,
    callKey: dedupeKey,
    vendorTime: null,
    vendorTimeRaw: null,
    receivedAt: new Date(),
    rawBody: '{"a":1}',
    payload: { a: 1 },
    headers: {},
    status: 'pending',
  });

  it('answers duplicate for a key already stored, and never for one the insert silently lost', async () => {
    const logger = createLogger({ level: 'silent' });
    const real = new IngestQueue(testDb.database, { maxBatch: 10, maxInFlight: 1, timeoutMs: 5_000 }, logger);
    expect(await real.submit(event('kept'))).toBe('stored');
    expect(await real.submit(event('kept'))).toBe('duplicate');

    // An engine that answers the INSERT with no rows and no error (PGlite does
    // for some inputs) must not make a lost event look like a re-delivery.
    const lossy: Database = {
      ...testDb.database,
      query: (text, params, options) =>
        text.includes('INSERT INTO webhook_events') ? Promise.resolve([]) : testDb.database.query(text, params, options),
    };
    const queue = new IngestQueue(lossy, { maxBatch: 10, maxInFlight: 1, timeoutMs: 5_000 }, logger);
    await expect(queue.submit(event('lost'))).rejects.toMatchObject({ failure: 'other', message: 'the database did not store the event' });
    expect(await queue.submit(event('kept'))).toBe('duplicate');
  });

  it('refuses at once past its bounds, and answers 503 to what waited its whole timeout', async () => {
    const logger = createLogger({ level: 'silent' });
    // A database that never answers: every statement hangs.
    const stuck: Database = { ...testDb.database, query: () => new Promise(() => {}) };
    const queue = new IngestQueue(stuck, { maxBatch: 2, maxInFlight: 1, timeoutMs: 300, maxQueued: 3, maxQueuedBytes: 1_000 }, logger);
    // Each answer is caught the moment it is created, with the time it came:
    // a slow machine may settle them before the assertions below reach them.
    const settle = (answer: Promise<unknown>) => {
      const submitted = performance.now();
      return answer.then(
        (value) => ({ value, error: undefined, waitedMs: performance.now() - submitted }),
        (error: unknown) => ({ value: undefined, error, waitedMs: performance.now() - submitted }),
      );
    };
    const inFlight = [settle(queue.submit(event('a'))), settle(queue.submit(event('b')))];
    await new Promise((resolve) => setImmediate(resolve)); // a and b form the batch in flight
    const waiting = [settle(queue.submit(event('c'))), settle(queue.submit(event('d'))), settle(queue.submit(event('e')))];
    await expect(queue.submit(event('f'))).rejects.toMatchObject({ failure: 'unavailable', message: 'too many webhooks are waiting for the database' });
    const big = (key: string) => ({ ...event(key), rawBody: `{"a":"${'x'.repeat(2_000)}"}` });
    const bigQueue = new IngestQueue(stuck, { maxBatch: 1, maxInFlight: 1, timeoutMs: 300, maxQueuedBytes: 1_000 }, logger);
    const first = settle(bigQueue.submit(event('first')));
    await new Promise((resolve) => setImmediate(resolve)); // in flight
    const second = settle(bigQueue.submit(event('second'))); // waiting
    await expect(bigQueue.submit(big('too-big-now'))).rejects.toMatchObject({ failure: 'unavailable', message: 'too many webhooks are waiting for the database' });
    await Promise.all([first, second]);
    // An empty queue takes a body bigger than the byte bound on its own.
    const roomy = new IngestQueue(testDb.database, { maxBatch: 1, maxInFlight: 1, timeoutMs: 5_000, maxQueuedBytes: 1_000 }, logger);
    expect(await roomy.submit(big('alone'))).toBe('stored');

    for (const answer of await Promise.all([...inFlight, ...waiting])) {
      expect(answer.error).toMatchObject({ failure: 'unavailable', message: 'the database did not take the event within 300 ms' });
      // Each answered about timeoutMs after it arrived, not after a batch of its own timed out.
      expect(answer.waitedMs).toBeLessThan(1_000);
    }
    await queue.drain();
  });
});
