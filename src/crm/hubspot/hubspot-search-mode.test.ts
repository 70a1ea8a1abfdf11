import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { failed, ok, rejection } from '../../../test/support/crm-write';
import { call, contactBy, hubspotTargets, item } from '../../../test/support/hubspot-write';
import type { CrmRecord } from '../../core/crm-record';
import { ManualClock } from '../../../test/support/manual-clock';
import { SEARCH_LAG_MS } from './hubspot-identity';
import type { SentPayload } from '../engine/sent-record';

const server = setupServer();
let fake: FakeHubSpot;
const { target } = hubspotTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeHubSpot();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('HubSpotTarget without a unique property (search before create)', () => {
  let portal: FakeHubSpot;
  beforeEach(() => {
    // HubSpot's search sees a new record only a moment after it was created.
    portal = new FakeHubSpot({ customProperties: { calls: ['call_sync_id'], tasks: ['call_sync_id'] }, uniqueProperties: {}, searchIndexDelayMs: 300 });
    server.use(...portal.handlers());
  });

  const realWait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('reads the property, finds it not unique, and creates with the association inline, then updates by known id', async () => {
    const contact = portal.addContact({ phone: '(555) 765-4321' });
    const hs = target(); // HUBSPOT_ID_PROPERTY_UNIQUE left at its default: the portal decides

    const created = ok((await hs.write([item(1, [call('s:1', {}, contactBy('+15557654321'))])]))[0]);
    expect(created.created).toBe(true);
    const id = created.ids['s:1'] ?? '';
    expect(portal.associationsOf('calls', id, 'contacts')).toEqual([contact]);
    expect((created.sent as unknown as SentPayload).records[0]).toMatchObject({
      operation: 'create',
      payload: { properties: { call_sync_id: 's:1' }, associations: [{ to: { id: contact }, types: [{ associationTypeId: 194 }] }] },
    });

    const updated = ok((await hs.write([item(1, [call('s:1', { hs_call_body: 'known id' })], { 's:1': id })]))[0]);
    expect(updated).toMatchObject({ created: false, ids: { 's:1': id } });
    expect(portal.find('calls', 'call_sync_id', 's:1')).toEqual([expect.objectContaining({ properties: expect.objectContaining({ hs_call_body: 'known id' }) })]);
    expect(portal.requests('property')).toBe(1); // read once, cached
    expect(portal.requests('upsert')).toBe(0);
  });

  it('never duplicates a create that timed out after HubSpot applied it, though search lags', async () => {
    const clock = new ManualClock();
    const hs = target({ CRM_TIMEOUT_MS: '150' }, clock);
    portal.failNext(1, { type: 'late', delayMs: 300 }, 'create');
    const timeout = await rejection(hs.write([item(2, [call('s:2', { hs_call_body: 'v1' })])]));
    expect(timeout).toMatchObject({ kind: 'transient', crmCode: 'TIMEOUT' });
    // Past the search lag: the worker neither retries it in process nor reschedules it sooner.
    expect(timeout.retryAt?.getTime()).toBe(clock.now() + SEARCH_LAG_MS);
    expect(portal.find('calls', 'call_sync_id', 's:2')).toHaveLength(1); // HubSpot did create it

    // A retry inside the lag (another path, a short backoff) is held, not searched and created again.
    const requests = portal.requests();
    const [held] = await hs.write([item(2, [call('s:2', { hs_call_body: 'v2' })])]);
    expect(failed(held).error).toMatchObject({ kind: 'transient', crmCode: 'CREATE_IN_DOUBT', retryAt: new Date(clock.now() + SEARCH_LAG_MS) });
    expect(portal.requests()).toBe(requests);

    await realWait(350); // the fake's index catches up (HubSpot: seconds)
    clock.advance(SEARCH_LAG_MS);
    const retried = ok((await hs.write([item(2, [call('s:2', { hs_call_body: 'v2' })])]))[0]);
    expect(retried.created).toBe(false);
    expect(portal.find('calls', 'call_sync_id', 's:2')).toEqual([expect.objectContaining({ properties: expect.objectContaining({ hs_call_body: 'v2' }) })]);
  });

  it('holds a call whose create answered 5xx until the search lag has passed', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    portal.failNext(1, { type: 'unavailable' }, 'create');
    const error = await rejection(hs.write([item(3, [call('s:3')])]));
    expect(error).toMatchObject({ kind: 'transient', httpStatus: 503 });
    expect(error.retryAt?.getTime()).toBe(clock.now() + SEARCH_LAG_MS);
    // A 429 is refused before anything is applied: no wait beyond its own.
    portal.failNext(1, { type: 'rate-limit', retryAfterSeconds: 1 }, 'create');
    clock.advance(SEARCH_LAG_MS);
    const limited = await rejection(hs.write([item(4, [call('s:4')])]));
    expect(limited).toMatchObject({ kind: 'transient', httpStatus: 429 });
    clock.advance(1_000);
    ok((await hs.write([item(4, [call('s:4')])]))[0]);
  });

  it('remembers the ids it created when the write failed afterwards, so the retry updates them instead of creating again', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const followup: CrmRecord = {
      kind: 'followup',
      object: 'tasks',
      externalId: 's:5:callback',
      fields: { hs_timestamp: '2025-01-16T09:00:00.000Z', hs_task_subject: 'Call back' },
      createOnly: [],
      lookups: {},
    };
    // Calls and tasks go in two creates: the calls one fails, the tasks one goes through.
    portal.failNext(1, { type: 'unavailable' }, 'create');
    const error = await rejection(hs.write([item(5, [call('s:5'), followup])]));
    expect(error).toMatchObject({ kind: 'transient', httpStatus: 503 });
    expect(error.retryAt?.getTime()).toBe(clock.now() + SEARCH_LAG_MS);
    expect(portal.records('tasks')).toHaveLength(1);

    clock.advance(SEARCH_LAG_MS); // HubSpot's index still lags (300 ms of real time have not passed)
    const again = ok((await hs.write([item(5, [call('s:5'), followup])]))[0]);
    expect(portal.records('tasks')).toHaveLength(1);
    expect(portal.records('calls')).toHaveLength(1);
    expect(again.ids['s:5:callback']).toBe(portal.records('tasks')[0]?.id);
  });

  it('uses search mode when told to, even with a unique property', async () => {
    const unique = new FakeHubSpot();
    server.use(...unique.handlers());
    const hs = target({ HUBSPOT_ID_PROPERTY_UNIQUE: 'false' });
    const created = ok((await hs.write([item(1, [call('f:1')])]))[0]);
    ok((await hs.write([item(1, [call('f:1', { hs_call_body: 'again' })], created.ids)]))[0]);
    expect(unique.counters()).toEqual({ property: 1, search: 1, create: 1, update: 1 });
  });

  it('without any id property, keeps the call key in hs_call_external_id and finds it there', async () => {
    const hs = target({ HUBSPOT_ID_PROPERTY: '' });
    ok((await hs.write([item(1, [call('e:1', { hs_call_body: 'first' })])]))[0]);
    await realWait(350);
    const fresh = target({ HUBSPOT_ID_PROPERTY: '' }); // another worker process: no memory of the create
    const again = ok((await fresh.write([item(1, [call('e:1', { hs_call_body: 'second' })])]))[0]);
    expect(again.created).toBe(false);
    expect(portal.find('calls', 'hs_call_external_id', 'e:1')).toEqual([expect.objectContaining({ properties: expect.objectContaining({ hs_call_body: 'second' }) })]);
    expect(portal.requests('property')).toBe(0);
  });

  it('isolates the call whose id HubSpot no longer has (404 context.ids) and updates the others', async () => {
    const hs = target();
    const written = (await hs.write([item(1, [call('u:1')]), item(2, [call('u:2')]), item(3, [call('u:3')])])).map((r) => ok(r));
    portal.resetCounters();
    const results = await hs.write([
      item(1, [call('u:1', { hs_call_body: 'x' })], written[0]?.ids),
      item(2, [call('u:2', { hs_call_body: 'x' })], { 'u:2': '999999' }),
      item(3, [call('u:3', { hs_call_body: 'x' })], written[2]?.ids),
    ]);
    expect(failed(results[1]).error).toMatchObject({ kind: 'permanent', httpStatus: 404, crmCode: 'OBJECT_NOT_FOUND' });
    ok(results[0]);
    ok(results[2]);
    expect(portal.counters()).toEqual({ update: 2 });
  });
});

describe('HubSpotTarget id property checks', () => {
  it('fails calls with a clear setup error (mapping: fix, then replay) when the property is missing, writes nothing, and picks it up once created', async () => {
    const portal = new FakeHubSpot({ customProperties: { calls: [] }, uniqueProperties: {} });
    server.use(...portal.handlers());
    const clock = new ManualClock();
    const hs = target({}, clock);
    const results = await hs.write([item(1, [call('p:1')]), item(2, [call('p:2')])]);
    for (const result of results) {
      // The same kind as Salesforce's missing External ID field.
      expect(failed(result).error).toMatchObject({ kind: 'mapping', retryable: false, httpStatus: 404, crmCode: 'ID_PROPERTY_MISSING' });
    }
    const message = failed(results[0]).error.message;
    expect(message).toContain('HubSpot calls have no property "call_sync_id" (HUBSPOT_ID_PROPERTY)');
    expect(message).toContain('"hasUniqueValue": true');
    expect(portal.counters()).toEqual({ property: 1 });
    expect(portal.records('calls')).toHaveLength(0);

    portal.defineProperty('calls', 'call_sync_id', { unique: true });
    clock.advance(61_000);
    ok((await hs.write([item(1, [call('p:1')])]))[0]);
    expect(portal.find('calls', 'call_sync_id', 'p:1')).toHaveLength(1);
  });

  it('has the worker retry soon, in search mode, the calls HubSpot refuses to upsert once the property stops being unique', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const created = (await hs.write([item(1, [call('c:1')]), item(2, [call('c:2')])])).map((r) => ok(r));
    fake.defineProperty('calls', 'call_sync_id', { unique: false });
    const batch = (body: string) => created.map((c, i) => item(i + 1, [call(`c:${i + 1}`, { hs_call_body: body })], c.ids));

    const refused = await hs.write(batch('v2'));
    // What the worker goes by: retryable, due in a few seconds. A mapping
    // error would fail every call of the batch for good instead.
    for (const result of refused) {
      const { error } = failed(result);
      expect(error).toMatchObject({ kind: 'transient', retryable: true, httpStatus: 400, retryAt: new Date(clock.now() + 3_000) });
      expect(error.message).toMatch(/^VALIDATION_ERROR: Unable to perform update\/upsert by non-unique 0-48 property call_sync_id/);
    }
    expect(fake.records('calls').map((c) => c.properties['hs_call_body'])).toEqual([undefined, undefined]);

    clock.advance(3_000);
    const updated = (await hs.write(batch('v2'))).map((r) => ok(r));
    expect(updated.map((u) => (u.sent as unknown as SentPayload).records[0]?.operation)).toEqual(['update', 'update']);
    expect(fake.requests('property')).toBe(2);
    for (const id of ['c:1', 'c:2']) {
      expect(fake.find('calls', 'call_sync_id', id)).toEqual([expect.objectContaining({ properties: expect.objectContaining({ hs_call_body: 'v2' }) })]);
    }
  });
});
