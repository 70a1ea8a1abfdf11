import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { FakeRequestEvent } from '../fakes/http';
import type { SalesforceRequestKind } from '../fakes/salesforce';
import { realPostgresUrl } from '../support/db';
import { attemptRows, callRows, expectDeliveredExactlyOnce, hccCall, openScenario, range, waitSettled, type Scenario } from './scenario';

/**
 * The org goes down for a while: from the first request the new calls
 * cause, every API request answers 503 for 3 s, then 429 with
 * Retry-After: 1 for 3 s more, then it recovers. The outage
 * outlasts the worker's quick in-process retries, so the durable schedule
 * (SYNC_BACKOFF_BASE_MS=100, capped at 1 s) carries the calls through it.
 * Afterwards everything is delivered, exactly once, and no call used up its
 * SYNC_MAX_ATTEMPTS budget.
 *
 * One worker with one slot: its requests then reach the org one after the
 * other, so the org can tell whether Retry-After was honoured.
 */
const CALLS = 300;
const MAX_ATTEMPTS = 10;
const DOWN_MS = 3_000;
const RATE_LIMITED_MS = 3_000;
const RETRY_AFTER_S = 1;
const API_KINDS: SalesforceRequestKind[] = ['sosl', 'soql', 'upsert', 'upsert-one', 'retrieve'];

describe.skipIf(!realPostgresUrl())('the CRM answering 503, then 429, for a while (real Postgres; skipped without TEST_DATABASE_URL)', () => {
  let scenario: Scenario;

  beforeAll(async () => {
    scenario = await openScenario({
      SYNC_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      SYNC_BACKOFF_BASE_MS: '100',
      SYNC_BACKOFF_MAX_MS: '1000',
      SYNC_POLL_MS: '100',
      SYNC_LEASE_SECONDS: '30',
      WORKER_CONCURRENCY: '1',
    });
  });
  afterAll(async () => {
    // Unset when the set-up failed before assigning it.
    await scenario?.close();
  });

  it('delivers everything once the CRM is back, within the retry budget, honouring Retry-After', { timeout: 90_000 }, async () => {
    onTestFailed(() => {
      console.error(scenario.fleet.outputs());
    });
    const { fake, database, fleet } = scenario;
    const worker = await fleet.spawn('worker');
    await worker.ready;

    // A first call while the org is up: the session and the lookups (one
    // Contact, one owner, one Account for every call) are then known, so
    // what follows is only writes.
    const warmUp = hccCall(0);
    await scenario.post(warmUp.events);
    await waitSettled(scenario, 1, 30_000);

    // The outage starts with the first request the new calls cause (armed
    // inside the fake's handler, before that request is answered), so it
    // does not depend on how long intake or the worker took to get there.
    const seen: Array<FakeRequestEvent<SalesforceRequestKind>> = [];
    fake.observe((event) => {
      if (event.kind === 'token' || event.phase === 'applied') return;
      if (seen.length === 0) {
        const start = event.at;
        fake.failBetween(start, start + DOWN_MS, { type: 'unavailable' }, API_KINDS);
        fake.failBetween(start + DOWN_MS, start + DOWN_MS + RATE_LIMITED_MS, { type: 'rate-limit', retryAfterSeconds: RETRY_AFTER_S }, API_KINDS);
      }
      seen.push(event);
    });
    const calls = range(CALLS).map((n) => hccCall(n));
    await scenario.post(calls.flatMap((c) => c.events));
    await waitSettled(scenario, CALLS + 1, 60_000);

    // The outage happened, as both kinds of answer, and outlasted the quick retries.
    const answered = seen.filter((e) => e.phase === 'answered');
    expect(answered.filter((e) => e.status === 503).length, 'answers 503').toBeGreaterThan(0);
    expect(answered.filter((e) => e.status === 429).length, 'answers 429').toBeGreaterThan(0);
    const attempts = await attemptRows(database);
    const rescheduled = attempts.filter((a) => a.outcome === 'retry');
    for (const a of rescheduled) {
      expect(a, a.call_key).toMatchObject({ error_kind: 'transient' });
      expect([503, 429], a.call_key).toContain(a.http_status);
    }
    // The first write's quick retries (about 0.2-0.4 s, then 0.8-1.6 s apart) all fall in the 503 part.
    expect(rescheduled.filter((a) => a.http_status === 503).length, 'attempts rescheduled after a 503').toBeGreaterThan(0);

    // Delivered afterwards, each call once and complete, nothing failed.
    expect((await callRows(database)).filter((r) => r.status !== 'synced')).toEqual([]);
    await expectDeliveredExactlyOnce(scenario, [warmUp, ...calls]);

    // Within the budget: no call used up its SYNC_MAX_ATTEMPTS.
    const mostAttempts = Math.max(...attempts.map((a) => a.attempt));
    expect(mostAttempts).toBeLessThan(MAX_ATTEMPTS);
    expect(attempts.filter((a) => a.outcome === 'failed')).toEqual([]);

    // Retry-After honoured: after each 429, nothing reached the org before it ran out.
    for (const [i, event] of seen.entries()) {
      if (event.phase !== 'answered' || event.status !== 429) continue;
      const next = seen.slice(i + 1).find((e) => e.phase === 'received');
      if (next === undefined) continue;
      expect(next.at - event.at, `request ${next.kind} after a 429 answered at ${event.at}`).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1000);
    }
  });
});
