import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { FakeRequestEvent } from '../fakes/http';
import type { SalesforceRequestKind } from '../fakes/salesforce';
import { realPostgresUrl } from '../support/db';
import type { WorkerProcess } from './harness';
import {
  attemptRows,
  callRows,
  eventStatusCounts,
  expectDeliveredExactlyOnce,
  hccCall,
  openScenario,
  range,
  waitSettled,
  type Scenario,
} from './scenario';

/**
 * Kill -9 mid-batch. One worker process claims the first 200 calls (one
 * Salesforce collection request) and is SIGKILLed at the moment the fake org
 * has applied that request, before it answers: the CRM has the Tasks, the
 * database still says "pending, leased by the dead worker". That is the
 * worst moment to die, since the restarted worker must write those calls
 * again without duplicating them. A restarted worker (same command, same
 * env) takes the orphaned calls once their lease (SYNC_LEASE_SECONDS=5)
 * expires, and the rest at once.
 */
const CALLS = 250;
const FIRST_BATCH = 200; // Salesforce's collection limit: the target's maxBatch

describe.skipIf(!realPostgresUrl())('worker killed with SIGKILL mid-batch, then restarted (real Postgres; skipped without TEST_DATABASE_URL)', () => {
  let scenario: Scenario;

  beforeAll(async () => {
    scenario = await openScenario({
      // Short, so the orphaned calls come back quickly (a live worker renews
      // its leases while it writes; a dead one stops renewing).
      SYNC_LEASE_SECONDS: '5',
      SYNC_POLL_MS: '100',
      SYNC_BACKOFF_BASE_MS: '100',
      SYNC_BACKOFF_MAX_MS: '1000',
      // One batch at a time, so the batch in flight at the kill is exactly the first 200 calls.
      WORKER_CONCURRENCY: '1',
    });
  });
  afterAll(async () => {
    // Unset when the set-up failed before assigning it.
    await scenario?.close();
  });

  it('syncs every event exactly once: one complete Task per call, nothing left pending', { timeout: 90_000 }, async () => {
    onTestFailed(() => {
      console.error(scenario.fleet.outputs());
    });
    const { fake, database, fleet } = scenario;
    fake.trackWrites = true;
    const calls = range(CALLS).map((n) => hccCall(n));
    await scenario.post(calls.flatMap((c) => c.events));

    // The first collection upsert is applied, then its answer is held back:
    // the worker is waiting on it when it dies.
    fake.failNext(1, { type: 'late', delayMs: 120_000 }, 'upsert');
    let victim: WorkerProcess | undefined;
    const applied = new Promise<FakeRequestEvent<SalesforceRequestKind>>((resolve) => {
      const stop = fake.observe((event) => {
        if (event.kind !== 'upsert' || event.phase !== 'applied') return;
        // Synchronously, inside the fake's handler: nothing can reach the worker in between.
        victim?.kill('SIGKILL');
        stop();
        resolve(event);
      });
    });
    victim = await fleet.spawn('victim');
    const write = await withTimeout(applied, 45_000, () => `the victim never wrote:\n${fleet.outputs()}`);
    expect(await victim.exited).toEqual({ code: null, signal: 'SIGKILL' });

    // Mid-batch for real: the CRM applied the whole batch, the database recorded none of it.
    expect(write.externalIds).toHaveLength(FIRST_BATCH);
    expect(fake.tasks()).toHaveLength(FIRST_BATCH);
    const inFlight = new Set(write.externalIds);
    const orphaned = (await callRows(database)).filter((r) => inFlight.has(`hcc:${r.call_key}`));
    expect(orphaned).toHaveLength(FIRST_BATCH);
    for (const row of orphaned) {
      expect(row, row.call_key).toMatchObject({ status: 'pending', crm_id: null, attempts: 0 });
      expect(row.locked_by, row.call_key).toContain(`:${victim.pid}:`);
    }
    expect(await eventStatusCounts(database)).toEqual({ pending: CALLS * 3 });
    expect(await attemptRows(database)).toEqual([]);
    const [lease] = await database.query<{ until: Date }>(
      `SELECT max(locked_until) AS until FROM call_syncs WHERE locked_by LIKE '%:' || $1::text || ':%'`,
      [victim.pid],
    );

    const restarted = await fleet.spawn('restarted');
    await restarted.ready;
    await waitSettled(scenario, CALLS, 45_000);

    await expectDeliveredExactlyOnce(scenario, calls);
    // The orphaned calls reached the CRM twice or more (the dead worker's
    // write, then the restarted one's) and still have one Task each.
    for (const id of inFlight) expect(fake.writeCount(id), id).toBeGreaterThanOrEqual(2);
    // Their history has one attempt, the restarted worker's: the dead one recorded nothing.
    const attempts = await attemptRows(database);
    for (const a of attempts) {
      expect(a, a.call_key).toMatchObject({ outcome: 'synced', attempt: 1 });
      expect(a.worker_id, a.call_key).toContain(`:${restarted.pid}:`);
    }
    expect(attempts).toHaveLength(CALLS);
    // ...and not before the dead worker's lease ran out.
    for (const a of attempts.filter((x) => inFlight.has(`hcc:${x.call_key}`))) {
      expect(a.started_at.getTime(), a.call_key).toBeGreaterThanOrEqual(lease?.until.getTime() ?? Number.POSITIVE_INFINITY);
    }
  });
});

function withTimeout<T>(promise: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
