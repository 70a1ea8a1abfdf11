import { setupServer } from 'msw/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../../test/support/config';
import { createLogger } from '../../log';
import type { CrmRecord } from '../../core/crm-record';
import { DryRunTarget } from './dry-run-target';
import { createCrmTarget } from '../index';
import type { DryRunSentPayload } from '../engine/sent-record';
import type { WriteItem, WriteResult } from '../engine/target-contract';

// No handlers: any request the dry-run made would fail the test.
const server = setupServer();
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());

const logger = createLogger({ level: 'silent' });

const salesforceTask: CrmRecord = {
  kind: 'activity',
  object: 'Task',
  externalId: 'enreach:abc',
  fields: { Subject: 'Inbound call', Status: 'Completed', TaskSubtype: 'Call', CallDurationInSeconds: 95, Description: null },
  createOnly: ['TaskSubtype'],
  lookups: { WhoId: { by: 'phone', value: '+358501231234' }, OwnerId: { by: 'email', value: 'agent@example.com' } },
};

const hubspotCall: CrmRecord = {
  kind: 'activity',
  object: 'calls',
  externalId: 'enreach:abc',
  fields: { hs_timestamp: '2025-01-15T12:00:00.000Z', hs_call_direction: 'INBOUND', hs_call_duration: 95_000, hs_call_body: null },
  createOnly: [],
  lookups: { contact: { by: 'phone', value: '+358501231234' } },
};

function item(knownIds: Record<string, string> = {}): WriteItem {
  return { syncId: 7, externalId: 'enreach:abc', records: { salesforce: [salesforceTask], hubspot: [hubspotCall] }, knownIds };
}

function sentOf(result: WriteResult | undefined): DryRunSentPayload {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result.sent as unknown as DryRunSentPayload;
}

describe('DryRunTarget', () => {
  it('records exactly what each CRM would be sent, lookups pending, without any network', async () => {
    const target = new DryRunTarget(testConfig(), logger);
    expect(target.needs).toEqual(['salesforce', 'hubspot']);
    const [result] = await target.write([item()]);
    expect(result).toMatchObject({ ok: true, created: true, ids: { 'enreach:abc': 'dry-run:enreach:abc' } });
    expect(sentOf(result)).toEqual({
      crm: 'dry-run',
      salesforce: [
        {
          kind: 'activity',
          object: 'Task',
          externalId: 'enreach:abc',
          operation: 'upsert',
          request: 'PATCH /services/data/v62.0/composite/sobjects/Task/Call_Sync_Id__c',
          payload: {
            attributes: { type: 'Task' },
            Subject: 'Inbound call',
            Status: 'Completed',
            TaskSubtype: 'Call',
            CallDurationInSeconds: 95,
            Description: null,
            Call_Sync_Id__c: 'enreach:abc',
          },
          lookups: salesforceTask.lookups,
        },
      ],
      hubspot: [
        {
          kind: 'activity',
          object: 'calls',
          externalId: 'enreach:abc',
          operation: 'create',
          request: 'POST /crm/v3/objects/calls/batch/create',
          payload: {
            objectWriteTraceId: 'enreach:abc',
            properties: {
              hs_timestamp: '2025-01-15T12:00:00.000Z',
              hs_call_direction: 'INBOUND',
              hs_call_duration: '95000',
              hs_call_body: '',
              call_sync_id: 'enreach:abc',
            },
          },
          lookups: hubspotCall.lookups,
        },
      ],
    });
    expect(target.recentWrites()).toEqual([expect.objectContaining({ syncId: 7, externalId: 'enreach:abc' })]);
    expect(target.pausedUntil()).toBeUndefined();
  });

  it('shows an update as it would go out: known ids kept, create-only fields left out', async () => {
    const target = new DryRunTarget(testConfig({ SALESFORCE_EXTERNAL_ID_FIELD: 'Sync_Key__c', SALESFORCE_API_VERSION: '61.0' }), logger);
    const [result] = await target.write([item({ 'enreach:abc': '00T000000000042AAA' })]);
    expect(result).toMatchObject({ ok: true, created: false, ids: { 'enreach:abc': '00T000000000042AAA' } });
    const sf = sentOf(result).salesforce[0];
    expect(sf?.request).toBe('PATCH /services/data/v61.0/composite/sobjects/Task/Sync_Key__c');
    expect(sf?.payload).not.toHaveProperty('TaskSubtype');
    expect(sf?.payload).toMatchObject({ Sync_Key__c: 'enreach:abc' });
  });

  it('follows the HubSpot mode: upsert a known call by the unique property, or update it by id when told it is not unique', async () => {
    const upsert = sentOf((await new DryRunTarget(testConfig(), logger).write([item({ 'enreach:abc': '901' })]))[0]).hubspot[0];
    expect(upsert).toMatchObject({ operation: 'upsert', request: 'POST /crm/v3/objects/calls/batch/upsert', payload: { idProperty: 'call_sync_id', id: 'enreach:abc' } });
    const target = new DryRunTarget(testConfig({ HUBSPOT_ID_PROPERTY_UNIQUE: 'false' }), logger);
    const create = sentOf((await target.write([item()]))[0]).hubspot[0];
    expect(create).toMatchObject({ operation: 'create', payload: { properties: { call_sync_id: 'enreach:abc' } } });
    const update = sentOf((await target.write([item({ 'enreach:abc': '901' })]))[0]).hubspot[0];
    expect(update).toMatchObject({ operation: 'update', request: 'POST /crm/v3/objects/calls/batch/update', payload: { id: '901' } });
  });

  it('fills in ids the mapping already gave (no CRM needed) and leaves only real lookups pending', async () => {
    const target = new DryRunTarget(testConfig(), logger);
    const withIds: WriteItem = {
      ...item(),
      records: {
        salesforce: [{ ...salesforceTask, lookups: { ...salesforceTask.lookups, WhatId: { by: 'id', value: '001000000000042AAA' } } }],
        hubspot: [{ ...hubspotCall, lookups: { ...hubspotCall.lookups, company: { by: 'id', value: '7001' }, hubspot_owner_id: { by: 'id', value: '55' } } }],
      },
    };
    const sent = sentOf((await target.write([withIds]))[0]);
    expect(sent.salesforce[0]?.payload).toMatchObject({ WhatId: '001000000000042AAA' });
    expect(sent.salesforce[0]?.lookups).toEqual(salesforceTask.lookups);
    expect(sent.hubspot[0]?.payload).toMatchObject({
      properties: { hubspot_owner_id: '55' },
      associations: [{ to: { id: '7001' }, types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: 182 }] }],
    });
    expect(sent.hubspot[0]?.lookups).toEqual(hubspotCall.lookups);
  });

  it('fails a call whose records no CRM could take, as a mapping error', async () => {
    const target = new DryRunTarget(testConfig(), logger);
    const bad: CrmRecord = { ...salesforceTask, fields: { 'Bad Field': 1 } };
    const [result] = await target.write([{ ...item(), records: { salesforce: [bad] } }]);
    expect(result).toMatchObject({ ok: false, error: { kind: 'mapping', retryable: false, message: '"Bad Field" is not a Salesforce field name' } });
  });
});

describe('createCrmTarget', () => {
  it('chooses by CRM_TARGET, dry-run when no CRM is configured', async () => {
    expect((await createCrmTarget(testConfig(), logger)).name).toBe('dry-run');
    const hubspot = await createCrmTarget(testConfig({ CRM_TARGET: 'hubspot', HUBSPOT_ACCESS_TOKEN: 'pat-x' }), logger);
    expect(hubspot).toMatchObject({ name: 'hubspot', needs: ['hubspot'], maxBatch: 100 });
    const salesforce = await createCrmTarget(
      testConfig({ CRM_TARGET: 'salesforce', SALESFORCE_CLIENT_ID: 'id', SALESFORCE_CLIENT_SECRET: 'secret' }),
      logger,
    );
    expect(salesforce).toMatchObject({ name: 'salesforce', needs: ['salesforce'], maxBatch: 200 });
  });

  it('refuses an unreadable JWT key at start-up with a clear message', async () => {
    const config = testConfig({
      CRM_TARGET: 'salesforce',
      SALESFORCE_CLIENT_ID: 'id',
      SALESFORCE_USERNAME: 'user@example.com',
      SALESFORCE_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\\nnot a key\\n-----END PRIVATE KEY-----',
    });
    await expect(createCrmTarget(config, logger)).rejects.toThrow(/^SALESFORCE_PRIVATE_KEY is neither a PEM private key nor the path of one/);
  });
});
