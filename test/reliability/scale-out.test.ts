import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { realPostgresUrl } from '../support/db';
import { sleep } from './harness';
import { attemptRows, expectDeliveredExactlyOnce, hccCall, openScenario, range, waitSettled, type Scenario } from './scenario';

/**
 * N worker processes (each with WORKER_CONCURRENCY=4 slots) on one database
 * and one backlog. The backlog (call-created and call-ended of every call)
 * is posted with all workers up and idle, so every slot of every process
 * races for it; then each call's call-saved arrives while the calls are
 * being synced, so a call often gets a new event while another worker holds
 * it. The fake org tracks, per Task external id, the write requests in
 * flight: two workers syncing one call at once would show as two.
 */
const CALLS = 400;
const WAVE = 25;

describe.skipIf(!realPostgresUrl())('several worker processes on one backlog (real Postgres; skipped without TEST_DATABASE_URL)', () => {
  let scenario: Scenario;

  beforeEach(async () => {
    scenario = await openScenario({
      SYNC_LEASE_SECONDS: '30',
      SYNC_POLL_MS: '100',
      WORKER_CONCURRENCY: '4',
    });
  });
  afterEach(async () => {
    // Unset when the set-up failed before assigning it.
    await scenario?.close();
  });

  it.each([2, 4])('%i workers: no call synced by two at once, no duplicates, everything synced', { timeout: 90_000 }, async (count) => {
    onTestFailed(() => {
      console.error(scenario.fleet.outputs());
    });
    const { fake, database, fleet } = scenario;
    fake.trackWrites = true;
    // Writes take a while, as in a real org, so that two syncs of one call would overlap at the CRM.
    fake.latencyByKind = { upsert: 40 };
    const workers = await fleet.spawnReady(count);

    const calls = range(CALLS).map((n) => hccCall(n));
    await scenario.post(calls.flatMap((c) => c.events.filter((e) => e.hccEvent !== 'call-saved')));
    // call-saved in a scrambled order (fixed, so every run is the same), a wave at a time while the backlog drains.
    const saved = calls.map((c, i) => ({ c, key: (i * 7919) % CALLS })).sort((a, b) => a.key - b.key);
    for (let i = 0; i < saved.length; i += WAVE) {
      await scenario.post(saved.slice(i, i + WAVE).flatMap(({ c }) => c.events.filter((e) => e.hccEvent === 'call-saved')));
      await sleep(20);
    }
    await waitSettled(scenario, CALLS, 60_000);

    expect(fake.recordsWrittenConcurrently(), 'Tasks written by two requests at once').toEqual([]);
    expect(fake.maxConcurrentWritesPerRecord()).toBe(1);
    await expectDeliveredExactlyOnce(scenario, calls);

    // The test proves something only if the workers really shared the work and wrote side by side.
    const syncedBy = new Set((await attemptRows(database)).map((a) => a.worker_id.split(':')[1]));
    expect(syncedBy.size, 'worker processes that synced calls').toBeGreaterThanOrEqual(2);
    expect([...syncedBy].every((pid) => workers.some((w) => String(w.pid) === pid))).toBe(true);
    expect(fake.maxConcurrentWriteRequests(), 'write requests in flight at once').toBeGreaterThanOrEqual(2);
  });
});
