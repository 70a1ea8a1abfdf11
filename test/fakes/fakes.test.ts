import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { createCrmTarget } from '../../src/crm/index';
import type { WriteResult } from '../../src/crm/engine/target-contract';
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

describe('fake HubSpot answers as HubSpot does', () => {
  async function portal(options: Parameters<typeof startFakeHubSpot>[0] = {}) {
    const started = await startFakeHubSpot(options);
    running.push(started.fake);
    const post = async (path: string, body: unknown) => {
      const response = await fetch(`${started.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${started.fake.accessToken}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const get = async (path: string) => {
      const response = await fetch(`${started.url}${path}`, { headers: { authorization: `Bearer ${started.fake.accessToken}` } });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    return { fake: started.fake, post, get };
  }
  const props = (extra: Record<string, string> = {}) => ({ hs_timestamp: '2025-01-15T12:00:00.000Z', ...extra });

  it('multi-status (207) for a traced batch create only; upsert and update refuse the whole batch', async () => {
    const { fake, post } = await portal();
    const created = await post('/crm/v3/objects/calls/batch/create', {
      inputs: [
        { objectWriteTraceId: 'a', properties: props({ call_sync_id: 'a' }) },
        { objectWriteTraceId: 'b', properties: props({ hs_call_status: 'EXPLODED' }) },
      ],
    });
    expect(created.status).toBe(207);
    expect(created.body).toMatchObject({ numErrors: 1, errors: [{ category: 'VALIDATION_ERROR', context: { objectWriteTraceId: ['b'] } }] });

    const upserted = await post('/crm/v3/objects/calls/batch/upsert', {
      inputs: [
        { idProperty: 'call_sync_id', id: 'c', objectWriteTraceId: 'c', properties: props() },
        { idProperty: 'call_sync_id', id: 'd', objectWriteTraceId: 'd', properties: props({ hs_call_status: 'EXPLODED' }) },
      ],
    });
    expect(upserted.status).toBe(400);
    expect(upserted.body).toMatchObject({ category: 'VALIDATION_ERROR', message: expect.stringMatching(/^Property values were not valid: \[/) as unknown });
    expect(fake.find('calls', 'call_sync_id', 'c')).toEqual([]);

    const updated = await post('/crm/v3/objects/calls/batch/update', {
      inputs: [
        { id: String(fake.find('calls', 'call_sync_id', 'a')[0]?.id), objectWriteTraceId: 'a', properties: { hs_call_body: 'x' } },
        { id: '424242', objectWriteTraceId: 'z', properties: { hs_call_body: 'x' } },
      ],
    });
    expect(updated.status).toBe(404);
    expect(updated.body).toMatchObject({ category: 'OBJECT_NOT_FOUND', context: { ids: ['424242'] } });
    expect(fake.find('calls', 'call_sync_id', 'a')[0]?.properties).not.toHaveProperty('hs_call_body');

    const ok = await post('/crm/v3/objects/calls/batch/upsert', { inputs: [{ idProperty: 'call_sync_id', id: 'a', objectWriteTraceId: 'a', properties: { hs_call_body: 'y' } }] });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'COMPLETE', results: [{ new: false, objectWriteTraceId: 'a' }] });
  });

  it('describes properties (hasUniqueValue), 404 for one the portal lacks, and refuses upsert by a non-unique one', async () => {
    const { post, get } = await portal({ customProperties: { calls: ['call_sync_id', 'loose_key'] }, uniqueProperties: { calls: ['call_sync_id'] } });
    expect(await get('/crm/v3/properties/calls/call_sync_id')).toMatchObject({ status: 200, body: { name: 'call_sync_id', type: 'string', fieldType: 'text', hasUniqueValue: true } });
    expect(await get('/crm/v3/properties/calls/loose_key')).toMatchObject({ status: 200, body: { hasUniqueValue: false } });
    expect(await get('/crm/v3/properties/calls/nope')).toMatchObject({ status: 404, body: { category: 'OBJECT_NOT_FOUND' } });
    const refused = await post('/crm/v3/objects/calls/batch/upsert', { inputs: [{ idProperty: 'loose_key', id: 'k', properties: props() }] });
    expect(refused).toMatchObject({ status: 400, body: { message: 'Unable to perform update/upsert by non-unique 0-48 property loose_key in portal ID 4000001' } });
  });

  it('finds a record created through the API only after searchIndexDelayMs', async () => {
    const { post } = await portal({ searchIndexDelayMs: 200 });
    await post('/crm/v3/objects/calls/batch/create', { inputs: [{ objectWriteTraceId: 'l', properties: props({ call_sync_id: 'l' }) }] });
    const search = () => post('/crm/v3/objects/calls/search', { filterGroups: [{ filters: [{ propertyName: 'call_sync_id', operator: 'EQ', value: 'l' }] }] });
    expect((await search()).body).toMatchObject({ total: 0 });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await search()).body).toMatchObject({ total: 1 });
  });
});
