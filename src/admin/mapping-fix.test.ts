import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testConfig } from '../../test/support/config';
import { SalesforceTarget } from '../crm/salesforce/salesforce-target';
import { createApp } from '../http/app';
import { createLogger } from '../log';
import type { MappingStore } from '../mapping';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { SyncWorker } from '../worker/loop';
import { FakeSalesforce } from '../../test/fakes/salesforce';
import { SECRETS } from '../../test/support/app';
import { testDbKinds } from '../../test/support/db';
import { mountAdmin } from './index';
import { CALL_RESULT_RULE, addHccDispositionLabel, copyShippedMappings, postHccCall, seedHccOrg, useAdminTestDatabase } from '../../test/support/admin-setup';
import { ADMIN_TOKEN, auditRows, fastWorkerConfig } from '../../test/support/admin';

/**
 * The "done when", on the real stack: the shipped YAML mappings (a
 * copy in a temp dir, so the test can edit them like RevOps would), the
 * MappingStore reloading them, the webhook intake, the sync worker with the
 * Salesforce target, and the stateful Salesforce fake behind msw.
 *
 * The story: HCC sends a disposition code (77) the `dispositions` value
 * table does not know, so the Task's Call Result is the bare code, and the
 * org's validation rule rejects it. RevOps adds `77: Left voicemail` to the
 * table, the store reloads, the admin replays through the API (one call,
 * then the rest in bulk), the worker syncs, and the org holds the corrected
 * Tasks.
 */

const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

describe.each(testDbKinds())('a mapping fix reaches Salesforce through an admin replay, on %s', (kind) => {
  const logger = createLogger({ level: 'silent' });
  const db = useAdminTestDatabase(kind);
  let mappings: Awaited<ReturnType<typeof copyShippedMappings>>;
  let store: MappingStore;
  let fake: FakeSalesforce;
  let app: ReturnType<typeof createApp>;
  let worker: SyncWorker;
  let org: ReturnType<typeof seedHccOrg>;

  beforeEach(async () => {
    mappings = await copyShippedMappings(logger);
    store = mappings.store;
    fake = new FakeSalesforce();
    server.use(...fake.handlers());
    fake.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'cc-secret', runAsUsername: 'integration@example.com' });
    org = seedHccOrg(fake);

    const config = testConfig({
      ...SECRETS,
      ADMIN_TOKEN,
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: fake.loginUrl,
      SALESFORCE_CLIENT_ID: 'cc-client',
      SALESFORCE_CLIENT_SECRET: 'cc-secret',
    });
    const target = new SalesforceTarget(config, logger);
    const metrics = new Metrics();
    const { database } = db();
    const ingest = new IngestQueue(database, { maxBatch: 50, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
    app = createApp({
      config,
      database,
      logger,
      metrics,
      ingest,
      mappings: store,
      mount: (a) => mountAdmin(a, { config, database, logger, mappings: store, target }),
    });
    worker = new SyncWorker({ database, mappings: store, target, config: fastWorkerConfig(), logger, metrics });
  });

  afterEach(async () => {
    server.resetHandlers();
    await mappings.remove();
  });

  /** Runs the worker until nothing is due. */
  async function drain(): Promise<void> {
    for (let i = 0; i < 10 && (await worker.runOnce()) > 0; i += 1);
  }

  async function api(method: 'GET' | 'POST', url: string, body?: unknown) {
    const res = await app.request(url, { method, headers: AUTH, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  }

  it('fails on the unknown code, then replays after the YAML edit and the org holds the corrected Task', async () => {
    await postHccCall(app, 9_100_001, 77);
    await postHccCall(app, 9_100_002, 77);
    await postHccCall(app, 9_100_003, 51);
    await drain();

    // The admin sees which calls failed, and why (the org's own words).
    const failed = await api('GET', '/admin/syncs?status=failed');
    const items = (failed.json as { items: Array<{ id: number; callKey: string; lastError: string; lastErrorKind: string; attempts: number }> }).items;
    expect(items.map((i) => i.callKey).sort()).toEqual(['9100001', '9100002']);
    for (const item of items) {
      expect(item.lastErrorKind).toBe('permanent');
      expect(item.lastError).toContain(CALL_RESULT_RULE);
    }
    expect(fake.taskByExternalId('hcc:9100003')).toMatchObject({ CallDisposition: 'Sale' });
    expect(fake.taskByExternalId('hcc:9100001')).toBeUndefined();
    const one = items.find((i) => i.callKey === '9100001')?.id ?? 0;

    const before = await api('GET', `/admin/syncs/${one}`);
    expect(before.json).toMatchObject({ preview: { ok: true, activity: { dispositionCode: '77', dispositionLabel: '77' } } });

    // RevOps adds the code to the value table; the store reloads the edited file.
    addHccDispositionLabel(mappings.dir, 77, 'Left voicemail');
    expect(await store.reload()).toBe(true);

    const after = await api('GET', `/admin/syncs/${one}`);
    expect(after.json).toMatchObject({ preview: { ok: true, activity: { dispositionLabel: 'Left voicemail' } } });

    // One call from the API: folded now with the edited mapping, queued, synced by the worker.
    const replayed = await api('POST', `/admin/syncs/${one}/replay`);
    expect(replayed.status).toBe(200);
    expect(replayed.json).toMatchObject({ id: one, status: 'pending', previousStatus: 'failed', activity: { dispositionLabel: 'Left voicemail' } });
    await drain();
    const task = fake.taskByExternalId('hcc:9100001');
    expect(task).toMatchObject({
      Call_Sync_Id__c: 'hcc:9100001',
      Subject: 'Outbound call – Left voicemail',
      CallDisposition: 'Left voicemail',
      TaskSubtype: 'Call',
      Status: 'Completed',
      WhoId: org.contactId,
      OwnerId: org.ownerId,
      WhatId: org.accountId,
    });
    expect(String(task?.['Description'])).toContain('Disposition: Left voicemail\nDisposition code: 77');
    const synced = await api('GET', `/admin/syncs/${one}`);
    expect(synced.json).toMatchObject({ sync: { status: 'synced', crmId: task?.Id, lastError: null } });

    // The rest in bulk: the worker folds them with the mappings current when it writes.
    const bulk = await api('POST', '/admin/syncs/replay', { status: 'failed', source: 'hcc' });
    expect(bulk.json).toMatchObject({ dryRun: false, count: 1, skipped: 0 });
    await drain();
    expect(fake.taskByExternalId('hcc:9100002')).toMatchObject({ CallDisposition: 'Left voicemail', Subject: 'Outbound call – Left voicemail' });
    expect(fake.tasks()).toHaveLength(3);
    expect((await api('GET', '/admin/syncs?status=failed')).json).toEqual({ items: [], nextCursor: null });

    expect((await auditRows(db().database)).map((a) => [a.action, a.details['outcome'] ?? null])).toEqual([
      ['sync.view', null],
      ['sync.view', null],
      ['sync.replay', 'queued'],
      ['sync.view', null],
      ['syncs.replay', 'done'],
    ]);
  });
});
