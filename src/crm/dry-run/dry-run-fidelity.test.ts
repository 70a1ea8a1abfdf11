import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { testConfig } from '../../../test/support/config';
import { createLogger } from '../../log';
import type { CrmRecord } from '../../core/crm-record';
import { DryRunTarget } from './dry-run-target';
import { HubSpotTarget } from '../hubspot/hubspot-target';
import { SalesforceTarget } from '../salesforce/salesforce-target';
import type { DryRunSentPayload, SentPayload, SentRecord } from '../engine/sent-record';
import type { WriteItem, WriteResult } from '../engine/target-contract';

// Dry-run claims to record exactly what the live targets send: the same
// records through both must produce the same request elements.
const server = setupServer();
const logger = createLogger({ level: 'silent' });
beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterEach(() => server.resetHandlers());
afterAll(() => server.close());

function sentOf<T>(result: WriteResult | undefined): T {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result.sent as unknown as T;
}

/** What both must agree on; the live target adds what it learnt from the CRM (unresolved lookups), dry-run what is pending. */
function comparable(record: SentRecord | undefined): Partial<SentRecord> {
  if (record === undefined) return {};
  const { kind, object, externalId, operation, request, payload, associations } = record;
  return { kind, object, externalId, operation, request, payload, ...(associations === undefined ? {} : { associations }) };
}

describe('dry-run fidelity', () => {
  it('HubSpot: a new call is created (property and associations inline), a known one upserted, as the target sends them', async () => {
    const fake = new FakeHubSpot();
    server.use(...fake.handlers());
    const company = fake.addCompany({ name: 'Acme' });
    const owner = fake.addOwner({ email: 'rep@example.com' });
    const record: CrmRecord = {
      kind: 'activity',
      object: 'calls',
      externalId: 'hcc:fid-1',
      fields: { hs_timestamp: '2025-01-15T12:00:00.000Z', hs_call_direction: 'INBOUND', hs_call_duration: 60_000, hs_call_body: null },
      createOnly: [],
      lookups: { company: { by: 'id', value: company }, hubspot_owner_id: { by: 'id', value: owner } },
    };
    const config = testConfig({ CRM_TARGET: 'hubspot', HUBSPOT_ACCESS_TOKEN: fake.accessToken });
    const live = new HubSpotTarget(config, logger);
    const dry = new DryRunTarget(config, logger);
    const item = (knownIds: Record<string, string>): WriteItem => ({ syncId: 1, externalId: record.externalId, records: { hubspot: [record] }, knownIds });

    const [liveNew] = await live.write([item({})]);
    const [dryNew] = await dry.write([item({})]);
    const sentNew = sentOf<SentPayload>(liveNew).records[0];
    expect(sentNew?.operation).toBe('create');
    expect(comparable(sentOf<DryRunSentPayload>(dryNew).hubspot[0])).toEqual(comparable(sentNew));

    const ids = liveNew?.ok === true ? liveNew.ids : {};
    const [liveKnown] = await live.write([item(ids)]);
    const [dryKnown] = await dry.write([item(ids)]);
    const sentKnown = sentOf<SentPayload>(liveKnown).records[0];
    expect(sentKnown?.operation).toBe('upsert');
    expect(comparable(sentOf<DryRunSentPayload>(dryKnown).hubspot[0])).toEqual(comparable(sentKnown));
  });

  it('Salesforce: the same Task element, TaskSubtype on create only', async () => {
    const fake = new FakeSalesforce();
    server.use(...fake.handlers());
    fake.registerConnectedApp({ clientId: 'cc', clientSecret: 'secret', runAsUsername: 'integration@example.com' });
    const user = fake.addUser({ Email: 'rep@example.com' });
    const record: CrmRecord = {
      kind: 'activity',
      object: 'Task',
      externalId: 'hcc:fid-2',
      fields: { Subject: 'Call', Status: 'Completed', TaskSubtype: 'Call', CallDurationInSeconds: 60, Description: null },
      createOnly: ['TaskSubtype'],
      lookups: { OwnerId: { by: 'id', value: user } },
    };
    const config = testConfig({ CRM_TARGET: 'salesforce', SALESFORCE_LOGIN_URL: fake.loginUrl, SALESFORCE_CLIENT_ID: 'cc', SALESFORCE_CLIENT_SECRET: 'secret' });
    const live = new SalesforceTarget(config, logger);
    const dry = new DryRunTarget(config, logger);
    const item = (knownIds: Record<string, string>): WriteItem => ({ syncId: 2, externalId: record.externalId, records: { salesforce: [record] }, knownIds });

    for (const known of [false, true]) {
      const [liveResult] = await live.write([item(known ? { [record.externalId]: fake.taskByExternalId(record.externalId)?.Id ?? '' } : {})]);
      const [dryResult] = await dry.write([item(known ? { [record.externalId]: 'x' } : {})]);
      const sent = sentOf<SentPayload>(liveResult).records[0];
      expect(comparable(sentOf<DryRunSentPayload>(dryResult).salesforce[0])).toEqual(comparable(sent));
      expect(sent?.payload).toMatchObject({ OwnerId: user });
      if (known) expect(sent?.payload).not.toHaveProperty('TaskSubtype');
      else expect(sent?.payload).toMatchObject({ TaskSubtype: 'Call' });
    }
  });
});
