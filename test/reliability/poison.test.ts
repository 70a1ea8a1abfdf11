import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { parseDocument } from 'yaml';
import { realPostgresUrl } from '../support/db';
import {
  SHIPPED_MAPPINGS,
  attemptRows,
  callRows,
  expectDeliveredExactlyOnce,
  hccCall,
  openScenario,
  range,
  tasksByExternalId,
  waitSettled,
  type AttemptRow,
  type HccCall,
  type HccEvent,
  type Scenario,
} from './scenario';

/**
 * A poison event: one whose mapping throws. The worker runs on a copy of
 * the shipped mappings with one more rule in hcc.yaml, the kind RevOps could
 * write: a JSONata expression that raises an error ($error) for an event
 * whose `dnis` is "poison". Nothing in the service knows about it; the
 * mapping genuinely fails while folding that call.
 *
 * Wave 1 is posted before the worker starts, so all its calls are claimed
 * in one batch; the poison is call-saved, the last event in fold order.
 * Wave 2 arrives while the worker runs; the poison is call-created, the
 * first. Each poison call ends 'failed' (a mapping error is not retried)
 * and every other call, including those of the same batches, is synced.
 */
const WAVE = 30;
const POISON_MESSAGE = 'marked as poison by the QA rule (dnis is "poison")';

describe.skipIf(!realPostgresUrl())('a poison event (its mapping throws) (real Postgres; skipped without TEST_DATABASE_URL)', () => {
  let scenario: Scenario;
  let mappingsDir: string;

  beforeAll(async () => {
    mappingsDir = mkdtempSync(path.join(os.tmpdir(), 'callsync-poison-mappings-'));
    cpSync(SHIPPED_MAPPINGS, mappingsDir, { recursive: true });
    const file = path.join(mappingsDir, 'hcc.yaml');
    const doc = parseDocument(readFileSync(file, 'utf8'));
    doc.setIn(['activity', 'custom', 'qaPoisonCheck'], { jsonata: `dnis = "poison" ? $error(${JSON.stringify(POISON_MESSAGE)}) : null` });
    writeFileSync(file, doc.toString());
    scenario = await openScenario({
      MAPPINGS_DIR: mappingsDir,
      SYNC_LEASE_SECONDS: '30',
      SYNC_POLL_MS: '100',
      WORKER_CONCURRENCY: '1',
    });
  });
  afterAll(async () => {
    try {
      // Unset when the set-up failed before assigning it.
      await scenario?.close();
    } finally {
      rmSync(mappingsDir, { recursive: true, force: true });
    }
  });

  const poisoned = (n: number, at: HccEvent): HccCall => hccCall(n, (event, body) => (event === at ? { ...body, dnis: 'poison' } : body));

  it('fails its own call only; the other calls of its batches sync', { timeout: 90_000 }, async () => {
    onTestFailed(() => {
      console.error(scenario.fleet.outputs());
    });
    const { database, fake, fleet } = scenario;
    const wave1 = range(WAVE).map((n) => (n === 7 ? poisoned(n, 'call-saved') : hccCall(n)));
    await scenario.post(wave1.flatMap((c) => c.events));
    const worker = await fleet.spawn('worker');
    await worker.ready;
    await waitSettled(scenario, WAVE, 30_000);

    const wave2 = range(WAVE, WAVE + 1).map((n) => (n === 45 ? poisoned(n, 'call-created') : hccCall(n)));
    await scenario.post(wave2.flatMap((c) => c.events));
    await waitSettled(scenario, 2 * WAVE, 30_000);

    const all = [...wave1, ...wave2];
    const poison = all.filter((c) => c.n === 7 || c.n === 45);
    const healthy = all.filter((c) => !poison.includes(c));

    // The poison calls: failed, for the mapping, saying why; nothing of them in the CRM.
    const rows = new Map((await callRows(database)).map((r) => [r.call_key, r]));
    const events = await database.query<{ call_key: string; status: string }>(`SELECT call_key, status FROM webhook_events ORDER BY id`);
    for (const call of poison) {
      expect(rows.get(call.callKey), call.externalId).toMatchObject({
        status: 'failed',
        last_error_kind: 'mapping',
        // The message, then which file, line and rule to fix.
        last_error: expect.stringMatching(
          new RegExp(`^mapping failed: JSONata failed: ${escapeRegExp(POISON_MESSAGE)} \\(\\S*hcc\\.yaml:\\d+, custom\\.qaPoisonCheck\\)$`),
        ),
        crm_id: null,
        locked_by: null,
      });
      expect(events.filter((e) => e.call_key === call.callKey).map((e) => e.status), call.externalId).toEqual(['failed', 'failed', 'failed']);
      expect(tasksByExternalId(fake).has(call.externalId), call.externalId).toBe(false);
    }

    // Everyone else: delivered once and complete (this also checks the CRM has no other Task).
    await expectDeliveredExactlyOnce(scenario, healthy);

    // Same batches: every attempt on a poison call failed for the mapping at
    // once (never rescheduled), and the calls written in the same batch
    // (same worker, same batch start) were synced by it.
    const attempts = await attemptRows(database);
    const batchOf = (a: AttemptRow) => attempts.filter((b) => b.worker_id === a.worker_id && b.started_at.getTime() === a.started_at.getTime());
    for (const call of poison) {
      const mine = attempts.filter((a) => a.call_key === call.callKey);
      expect(mine.length, call.externalId).toBeGreaterThan(0);
      for (const a of mine) {
        expect(a, call.externalId).toMatchObject({ outcome: 'failed', error_kind: 'mapping' });
        expect(batchOf(a).filter((b) => b.call_key !== call.callKey && b.outcome !== 'synced'), call.externalId).toEqual([]);
      }
      expect(Math.max(...mine.map((a) => batchOf(a).length)), `${call.externalId}: calls in its largest batch`).toBeGreaterThan(1);
    }
    // Wave 1 was claimed whole: its poison call shared its batch with all 29 others.
    const first = attempts.find((a) => a.call_key === wave1[6]?.callKey);
    expect(first === undefined ? [] : batchOf(first).map((a) => a.call_key).sort()).toEqual(wave1.map((c) => c.callKey).sort());
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
