import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { testConfig } from '../support/config';
import { SalesforceTarget } from '../../src/crm/salesforce/salesforce-target';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { IngestQueue } from '../../src/outbox/ingest';
import { SyncWorker } from '../../src/worker/loop';
import { copyShippedMappings, useAdminTestDatabase } from '../support/admin-setup';
import { fastWorkerConfig } from '../support/admin';
import { FakeSalesforce } from '../fakes/salesforce';
import { SECRETS } from '../support/app';
import { testDbKinds } from '../support/db';
import { fixtureJson, vendorRequest } from '../support/webhooks';

/**
 * A callback's follow-up Task on the real stack (the shipped mappings,
 * intake, worker, Salesforce target, the stateful fake): scheduled by one
 * HCC save, then withdrawn by a later save that clears callback_time. The
 * org must end with the same follow-up Task, closed, not a second one and
 * not an open one left behind.
 */
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

describe.each(testDbKinds())('a withdrawn callback closes its follow-up Task in Salesforce, on %s', (kind) => {
  const logger = createLogger({ level: 'silent' });
  const db = useAdminTestDatabase(kind);
  let mappings: Awaited<ReturnType<typeof copyShippedMappings>>;
  let fake: FakeSalesforce;
  let app: ReturnType<typeof createApp>;
  let worker: SyncWorker;

  beforeEach(async () => {
    mappings = await copyShippedMappings(logger);
    fake = new FakeSalesforce();
    server.use(...fake.handlers());
    fake.registerConnectedApp({ clientId: 'cc-client', clientSecret: 'cc-secret', runAsUsername: 'integration@example.com' });
    fake.addContact({ FirstName: 'Dana', LastName: 'Customer', Phone: '(972) 555-0177' });
    const config = testConfig({
      ...SECRETS,
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: fake.loginUrl,
      SALESFORCE_CLIENT_ID: 'cc-client',
      SALESFORCE_CLIENT_SECRET: 'cc-secret',
    });
    const metrics = new Metrics();
    const { database } = db();
    const ingest = new IngestQueue(database, { maxBatch: 50, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
    app = createApp({ config, database, logger, metrics, ingest, mappings: mappings.store });
    const target = new SalesforceTarget(config, logger);
    worker = new SyncWorker({ database, mappings: mappings.store, target, config: fastWorkerConfig(), logger, metrics });
  });

  afterEach(async () => {
    server.resetHandlers();
    await mappings.remove();
  });

  async function post(hccEvent: string, fixture: string): Promise<void> {
    const { path, init } = vendorRequest('hcc', JSON.stringify(fixtureJson('hcc', fixture)), { hccEvent });
    const res = await app.request(path, init);
    expect(res.status).toBe(200);
  }

  async function drain(): Promise<void> {
    for (let i = 0; i < 10 && (await worker.runOnce()) > 0; i += 1);
  }

  it('schedules the follow-up, then closes that same Task when a later save clears the callback', async () => {
    const callId = String(fixtureJson('hcc', 'call-saved-callback.json').call_id);
    await post('call-created', 'call-created.json');
    await post('call-ended', 'call-ended.json');
    await post('call-saved', 'call-saved-callback.json');
    await drain();

    const open = fake.taskByExternalId(`hcc:${callId}:callback`);
    expect(open).toMatchObject({ Status: 'Not Started', IsReminderSet: true, ActivityDate: '2023-06-28' });
    expect(String(open?.['Subject'])).toMatch(/^Call back /);

    // The agent saves the wrap form again, without the callback.
    await post('call-saved', 'call-saved-callback-cleared.json');
    await drain();

    const closed = fake.taskByExternalId(`hcc:${callId}:callback`);
    expect(closed).toMatchObject({ Id: open?.['Id'], Status: 'Completed', IsReminderSet: false });
    expect(String(closed?.['Subject'])).toMatch(/^Cancelled: call back /);
    expect(fake.taskByExternalId(`hcc:${callId}`)).toMatchObject({ CallDisposition: 'Sale' });
    const tasksOfCall = fake.records('Task').filter((t) => String(t['Call_Sync_Id__c']).startsWith(`hcc:${callId}`));
    expect(tasksOfCall).toHaveLength(2);
  });
});
