import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../../test/support/config';
import { createLogger } from '../../log';
import { type MappingSet } from '../../mapping/mapping-set';
import { emptyActivity } from '../../core/activity';
import { SyncWorker } from '../../worker/loop';
import { buildTestApp } from '../../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../../test/support/db';
import { MemoryTarget, transient } from '../../../test/support/memory-target';
import { fixtureText, vendorRequest } from '../../../test/support/webhooks';

const mappings: MappingSet = {
  classify: (_source, eventType) => (eventType === 'QueueStatus' ? 'ignore' : 'sync'),
  fold: async (source, callKey, events) => ({ ...emptyActivity(source, callKey), eventIds: events.map((e) => e.id) }),
  toCrm: async (activity) => [
    { kind: 'activity', object: 'Task', externalId: activity.externalId, fields: { Subject: 'Call' }, createOnly: [], lookups: {} },
  ],
};

/** The value of one sample line of the Prometheus text, by metric name and labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const [series, value] = line.split(' ');
    if (series === undefined || value === undefined) continue;
    const bare = series.split('{')[0];
    if (bare !== name) continue;
    if (wanted.every((w) => series.includes(w))) return Number(value);
  }
  return undefined;
}

describe.each(testDbKinds())('GET /metrics on %s', (kind) => {
  let testDb: TestDatabase;
  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });

  it('counts webhooks per source, the outbox, syncs per target, CRM latency and retries', async () => {
    const t = buildTestApp({ database: testDb.database, mappings });
    const post = async (req: { path: string; init: RequestInit }) => (await t.app.request(req.path, req.init)).status;
    const created = fixtureText('hcc', 'call-created.json');
    expect(await post(vendorRequest('hcc', created, { hccEvent: 'call-created' }))).toBe(200);
    expect(await post(vendorRequest('hcc', created, { hccEvent: 'call-created' }))).toBe(200);
    expect(await post(vendorRequest('hcc', created, { hccEvent: 'call-created', auth: 'wrong' }))).toBe(401);
    expect(await post(vendorRequest('enreach', fixtureText('enreach', 'QueueCallInArrived.json')))).toBe(200);
    expect(await post(vendorRequest('enreach', fixtureText('enreach', 'QueueStatus.json')))).toBe(200);

    // The oldest pending event was received 90 s ago.
    await testDb.database.query(`UPDATE call_syncs SET pending_since = now() - interval '90 seconds' WHERE source = 'hcc'`);
    const before = await (await t.app.request('/metrics')).text();
    expect(sample(before, 'callsync_webhooks_accepted_total', { source: 'hcc', disposition: 'sync' })).toBe(1);
    expect(sample(before, 'callsync_webhooks_duplicated_total', { source: 'hcc' })).toBe(1);
    expect(sample(before, 'callsync_webhooks_rejected_total', { source: 'hcc', reason: 'unauthorized' })).toBe(1);
    expect(sample(before, 'callsync_webhooks_accepted_total', { source: 'enreach', disposition: 'ignore' })).toBe(1);
    expect(sample(before, 'callsync_outbox_pending_calls')).toBe(2);
    expect(sample(before, 'callsync_outbox_pending_events')).toBe(2);
    expect(sample(before, 'callsync_outbox_oldest_pending_age_seconds')).toBeGreaterThanOrEqual(90);
    expect(sample(before, 'callsync_outbox_oldest_pending_age_seconds')).toBeLessThan(120);

    // One call per batch: the first writes, the second fails three times (the
    // first try and two quick retries) and is rescheduled.
    const target = new MemoryTarget(1);
    target.inject(() => undefined);
    for (let i = 0; i < 3; i += 1) {
      target.inject(() => {
        throw transient();
      });
    }
    const worker = new SyncWorker({
      database: testDb.database,
      mappings: { current: () => mappings },
      target,
      config: { ...testConfig(), SYNC_BATCH_WAIT_MS: 0 },
      logger: createLogger({ level: 'silent' }),
      metrics: t.metrics,
      workerId: 'metrics-test',
    });
    expect(await worker.runOnce()).toBe(1);
    expect(await worker.runOnce()).toBe(1);

    const after = await (await t.app.request('/metrics')).text();
    expect(sample(after, 'callsync_syncs_succeeded_total', { target: 'dry-run' })).toBe(1);
    expect(sample(after, 'callsync_syncs_failed_total', { target: 'dry-run', kind: 'transient', outcome: 'retry' })).toBe(1);
    expect(sample(after, 'callsync_sync_retries_total', { target: 'dry-run', scope: 'durable' })).toBe(1);
    expect(sample(after, 'callsync_sync_retries_total', { target: 'dry-run', scope: 'quick' })).toBe(2);
    expect(sample(after, 'callsync_crm_request_seconds_count', { target: 'dry-run', outcome: 'ok' })).toBe(1);
    expect(sample(after, 'callsync_crm_request_seconds_count', { target: 'dry-run', outcome: 'error' })).toBe(3);
    expect(sample(after, 'callsync_outbox_pending_calls')).toBe(1);
    expect(sample(after, 'callsync_outbox_pending_events')).toBe(1);
    expect(after).toContain('# TYPE callsync_event_to_crm_seconds histogram');
  });
});
