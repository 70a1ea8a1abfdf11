import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { createCrmTarget } from '../../src/crm/index';
import type { WriteResult } from '../../src/crm/types';
import { createLogger } from '../../src/log';
import { startFakeHubSpot, type FakeHubSpot } from './hubspot';
import { phoneMatcher, startFakeSalesforce, type FakeSalesforce } from './salesforce';

// The fakes as worker processes and the benchmark use them: real HTTP, the
// target configured from environment variables only.
const logger = createLogger({ level: 'silent' });
const running: Array<FakeSalesforce | FakeHubSpot> = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((f) => f.close()));
});

function ok(result: WriteResult | undefined): Extract<WriteResult, { ok: true }> {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result;
}

describe('fakes over real HTTP', () => {
  it('Salesforce: a target configured from the env it hands out writes into its state', async () => {
    const { fake, url, env } = await startFakeSalesforce({ latencyMs: 20 });
    running.push(fake);
    const contact = fake.addContact({ Phone: '(555) 444-1212' });
    const target = await createCrmTarget(parseConfig({ ...env, LOG_LEVEL: 'silent' }), logger);
    const started = Date.now();
    const [result] = await target.write([
      {
        syncId: 1,
        externalId: 'hcc:1',
        knownIds: {},
        records: {
          salesforce: [
            { kind: 'activity', object: 'Task', externalId: 'hcc:1', fields: { Subject: 'Call', TaskSubtype: 'Call' }, createOnly: ['TaskSubtype'], lookups: { WhoId: { by: 'phone', value: '+15554441212' } } },
          ],
        },
      },
    ]);
    expect(ok(result).created).toBe(true);
    expect(Date.now() - started).toBeGreaterThanOrEqual(60); // token, SOSL, upsert: 20 ms each
    expect(fake.taskByExternalId('hcc:1')).toMatchObject({ Subject: 'Call', WhoId: contact });

    const state = (await (await fetch(`${url}/__fake/state`)).json()) as { counters: Record<string, number>; tables: Record<string, number> };
    expect(state.counters).toEqual({ token: 1, sosl: 1, upsert: 1 });
    expect(state.tables['Task']).toBe(1);
  });

  it('HubSpot: the same, and a dropped connection is a transient error', async () => {
    const { fake, env } = await startFakeHubSpot();
    running.push(fake);
    const owner = fake.addOwner({ email: 'agent@example.com' });
    const target = await createCrmTarget(parseConfig({ ...env, LOG_LEVEL: 'silent' }), logger);
    const record = {
      kind: 'activity' as const,
      object: 'calls',
      externalId: 'webex-cc:1',
      fields: { hs_timestamp: '2025-01-15T12:00:00.000Z', hs_call_title: 'Call' },
      createOnly: [],
      lookups: { hubspot_owner_id: { by: 'email' as const, value: 'agent@example.com' } },
    };
    fake.failNext(1, { type: 'network' }, 'create');
    await expect(target.write([{ syncId: 1, externalId: 'webex-cc:1', knownIds: {}, records: { hubspot: [record] } }])).rejects.toMatchObject({
      kind: 'transient',
    });
    ok((await target.write([{ syncId: 1, externalId: 'webex-cc:1', knownIds: {}, records: { hubspot: [record] } }]))[0]);
    expect(fake.find('calls', 'call_sync_id', 'webex-cc:1')).toEqual([
      expect.objectContaining({ properties: expect.objectContaining({ hs_call_title: 'Call', hubspot_owner_id: owner }) }),
    ]);
  });
});

describe('fake Salesforce phone search', () => {
  it('matches digits in any format, and suffixes of at least 7 digits either way', () => {
    const matches = phoneMatcher(['5551234567', '15551234567']);
    expect(matches('(555) 123-4567')).toBe(true);
    expect(matches('+1 555 123 4567')).toBe(true);
    expect(matches('+44 555 123 4567')).toBe(true); // a look-alike the client must reject
    expect(matches('123-4567')).toBe(true);
    expect(matches('4567')).toBe(false);
    expect(matches('555 123 4568')).toBe(false);
  });
});
