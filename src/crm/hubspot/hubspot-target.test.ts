import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { testConfig } from '../../config';
import { createLogger } from '../../log';
import type { CrmRecord, LookupRequest } from '../../core/crm-record';
import { ManualClock } from '../../core/time';
import { SEARCH_LAG_MS } from './hubspot-identity';
import { HubSpotTarget } from './hubspot-target';
import type { SentPayload } from '../engine/sent-record';
import { type WriteItem, type WriteResult } from '../engine/target-contract';
import { SyncError } from '../../core/errors';

const server = setupServer();
const logger = createLogger({ level: 'silent' });
let fake: FakeHubSpot;

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeHubSpot();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

function config(overrides: Record<string, string> = {}) {
  return testConfig({ CRM_TARGET: 'hubspot', HUBSPOT_ACCESS_TOKEN: fake.accessToken, ...overrides });
}

function target(overrides: Record<string, string> = {}, clock?: ManualClock): HubSpotTarget {
  return new HubSpotTarget(config(overrides), logger, clock === undefined ? {} : { clock });
}

function call(externalId: string, properties: CrmRecord['fields'] = {}, lookups: Record<string, LookupRequest> = {}): CrmRecord {
  return {
    kind: 'activity',
    object: 'calls',
    externalId,
    fields: {
      hs_timestamp: '2025-01-15T12:00:00.000Z',
      hs_call_title: 'Inbound call',
      hs_call_direction: 'INBOUND',
      hs_call_status: 'COMPLETED',
      hs_call_duration: 42_000,
      ...properties,
    },
    createOnly: [],
    lookups,
  };
}

function item(syncId: number, records: CrmRecord[], knownIds: Record<string, string> = {}): WriteItem {
  return { syncId, externalId: records[0]?.externalId ?? `x:${syncId}`, records: { hubspot: records }, knownIds };
}

function ok(result: WriteResult | undefined): Extract<WriteResult, { ok: true }> {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result;
}

function failed(result: WriteResult | undefined): Extract<WriteResult, { ok: false }> {
  if (result === undefined || result.ok) throw new Error(`expected failure, got ${JSON.stringify(result)}`);
  return result;
}

async function rejection(promise: Promise<unknown>): Promise<SyncError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error('expected a SyncError');
}

const contactBy = (phone: string) => ({ contact: { by: 'phone', value: phone } as const });

const WRITES = ['create', 'upsert'] as const;

describe('HubSpotTarget writes (unique id property)', () => {
  it('creates a call, then updates the same call in place', async () => {
    const hs = target();
    const created = ok((await hs.write([item(1, [call('enreach:c1', { hs_call_body: 'ringing' })])]))[0]);
    expect(created.created).toBe(true);
    const id = created.ids['enreach:c1'];

    const updated = ok(
      (await hs.write([item(1, [call('enreach:c1', { hs_call_body: 'answered', hs_call_duration: 180_000 })], { 'enreach:c1': id ?? '' })]))[0],
    );
    expect(updated.created).toBe(false);
    expect(updated.ids['enreach:c1']).toBe(id);
    expect((created.sent as unknown as SentPayload).records[0]).toMatchObject({
      operation: 'create',
      request: 'POST /crm/v3/objects/calls/batch/create',
      payload: { properties: { call_sync_id: 'enreach:c1' } },
    });
    const calls = fake.records('calls');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.properties).toMatchObject({ call_sync_id: 'enreach:c1', hs_call_body: 'answered', hs_call_duration: '180000' });
    expect((updated.sent as unknown as SentPayload).records[0]).toMatchObject({
      operation: 'upsert',
      request: 'POST /crm/v3/objects/calls/batch/upsert',
      payload: { idProperty: 'call_sync_id', id: 'enreach:c1', properties: { hs_call_body: 'answered' } },
    });
  });

  it('does not duplicate a call when a write HubSpot applied timed out and is retried', async () => {
    const hs = target({ CRM_TIMEOUT_MS: '150' });
    fake.failNext(1, { type: 'late', delayMs: 300 }, WRITES);
    expect(await rejection(hs.write([item(1, [call('hcc:slow', { hs_call_body: 'v1' })])]))).toMatchObject({ kind: 'transient', crmCode: 'TIMEOUT' });
    expect(fake.find('calls', 'call_sync_id', 'hcc:slow')).toHaveLength(1);

    const retried = ok((await hs.write([item(1, [call('hcc:slow', { hs_call_body: 'v2' })])]))[0]);
    expect(retried.created).toBe(false);
    expect(fake.find('calls', 'call_sync_id', 'hcc:slow')).toEqual([expect.objectContaining({ properties: expect.objectContaining({ hs_call_body: 'v2' }) })]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  });

  it('reads the errors of a 207: the rejected call fails, the others are written', async () => {
    fake.addValidationRule('calls', (p) => (p['hs_call_body'] === 'forbidden' ? 'The call body is not allowed' : undefined));
    const hs = target();
    const results = await hs.write([
      item(1, [call('u:1')]),
      item(2, [call('u:2', { hs_call_status: 'EXPLODED' })]),
      item(3, [call('u:3', { hs_call_body: 'forbidden' })]),
      item(4, [call('u:4')]),
    ]);
    ok(results[0]);
    ok(results[3]);
    expect(failed(results[1]).error).toMatchObject({
      kind: 'permanent',
      httpStatus: 207,
      crmCode: 'VALIDATION_ERROR',
      message: expect.stringContaining('EXPLODED was not one of the allowed options') as unknown,
    });
    expect(failed(results[2]).error).toMatchObject({ kind: 'permanent', message: 'VALIDATION_ERROR: The call body is not allowed' });
    expect(fake.records('calls').map((c) => c.properties['call_sync_id']).sort()).toEqual(['u:1', 'u:4']);
  });

  it('isolates the rejected call when HubSpot fails the whole batch with 400', async () => {
    fake.rejectWholeBatch = true;
    const hs = target();
    const results = await hs.write([
      item(1, [call('w:1')]),
      item(2, [call('w:2')]),
      item(3, [call('w:3', { hs_call_disposition_text: 'nope' })]),
      item(4, [call('w:4')]),
    ]);
    expect(failed(results[2]).error).toMatchObject({
      kind: 'mapping',
      retryable: false,
      httpStatus: 400,
      crmCode: 'VALIDATION_ERROR',
      message: 'VALIDATION_ERROR: Property "hs_call_disposition_text" does not exist',
    });
    for (const i of [0, 1, 3]) ok(results[i]);
    expect(fake.records('calls')).toHaveLength(3);
    // The refusal named the property: the others were created again at once
    // (new calls, their create-only properties kept), nothing bisected.
    expect(fake.counters()).toEqual({ property: 1, create: 2 });
  });

  it('writes the follow-up task with its own id and the same contact', async () => {
    const contact = fake.addContact({ phone: '+1 555 010 0000' });
    const hs = target();
    const followup: CrmRecord = {
      kind: 'followup',
      object: 'tasks',
      externalId: 'hcc:9:callback',
      fields: { hs_timestamp: '2025-01-16T09:00:00.000Z', hs_task_subject: 'Call back', hs_task_status: 'NOT_STARTED', hs_task_type: 'CALL' },
      createOnly: [],
      lookups: contactBy('+15550100000'),
    };
    const result = ok((await hs.write([item(1, [call('hcc:9', {}, contactBy('+15550100000')), followup])]))[0]);
    const taskId = result.ids['hcc:9:callback'] ?? '';
    expect(fake.associationsOf('tasks', taskId, 'contacts')).toEqual([contact]);
    expect(fake.associationsOf('calls', result.ids['hcc:9'] ?? '', 'contacts')).toEqual([contact]);
    expect(fake.find('tasks', 'call_sync_id', 'hcc:9:callback')[0]?.properties).toMatchObject({ hs_task_subject: 'Call back' });
  });

  it('turns 5xx and dropped connections into transient errors', async () => {
    const hs = target();
    fake.failNext(1, { type: 'unavailable' }, WRITES);
    expect(await rejection(hs.write([item(1, [call('x:1')])]))).toMatchObject({ kind: 'transient', httpStatus: 503 });
    fake.failNext(1, { type: 'network' }, WRITES);
    expect(await rejection(hs.write([item(1, [call('x:1')])]))).toMatchObject({ kind: 'transient', retryable: true });
    expect(fake.records('calls')).toHaveLength(0);
  });

  it('reports a refused token as an auth error (a private-app token has nothing to refresh with)', async () => {
    fake.failNext(1, { type: 'auth' });
    expect(await rejection(target().write([item(1, [call('a:1')])]))).toMatchObject({ kind: 'auth', httpStatus: 401, crmCode: 'INVALID_AUTHENTICATION' });
    expect(fake.records('calls')).toHaveLength(0);
  });
});

describe('HubSpotTarget create-only properties (unique id property)', () => {
  /** A call whose title is set when it is created and left alone afterwards (reps rename calls). */
  const titled = (externalId: string, title = 'Inbound call', fields: CrmRecord['fields'] = {}): CrmRecord => ({
    ...call(externalId, { hs_call_title: title, ...fields }),
    createOnly: ['hs_call_title'],
  });
  const titleOf = (externalId: string) => fake.find('calls', 'call_sync_id', externalId).map((c) => c.properties['hs_call_title'] ?? null);

  it('creates new calls with their create-only properties when HubSpot refuses a create without naming anyone', async () => {
    const hs = target();
    fake.failNext(
      1,
      { type: 'answer', status: 400, body: { status: 'error', message: 'Invalid input JSON on line 1, column 212', correlationId: 'c0ffee', category: 'VALIDATION_ERROR' } },
      'create',
    );
    const results = await hs.write([item(1, [titled('co:1')]), item(2, [titled('co:2')])]);
    results.forEach((r) => expect(ok(r).created).toBe(true));
    expect(titleOf('co:1')).toEqual(['Inbound call']);
    expect(titleOf('co:2')).toEqual(['Inbound call']);
    expect(fake.requests('upsert')).toBe(0);
  });

  it('leaves a call whose create failed transiently in a 207 to be created again, create-only properties included', async () => {
    const hs = target();
    fake.failInputNext('co:3', { category: 'INTERNAL_ERROR', message: 'An internal error occurred while writing this input' });
    const [flaky, fine] = await hs.write([item(3, [titled('co:3')]), item(4, [titled('co:4')])]);
    expect(failed(flaky).error).toMatchObject({ kind: 'transient', retryable: true, httpStatus: 207, crmCode: 'INTERNAL_ERROR' });
    expect(titleOf('co:3')).toEqual([]); // nothing of it written behind the worker's back
    expect(titleOf('co:4')).toEqual(['Inbound call']);

    // The worker's retry: the call is still new to it.
    expect(ok((await hs.write([item(3, [titled('co:3')])]))[0]).created).toBe(true);
    expect(titleOf('co:3')).toEqual(['Inbound call']);
  });

  it('upserts without its create-only properties a call HubSpot says exists (a timed-out create it applied)', async () => {
    const hs = target({ CRM_TIMEOUT_MS: '150' });
    fake.failNext(1, { type: 'late', delayMs: 300 }, 'create');
    await rejection(hs.write([item(5, [titled('co:5', 'Inbound call')])]));
    expect(titleOf('co:5')).toEqual(['Inbound call']);

    // Retried with a title the mapping now builds otherwise: the call exists, its title stays.
    const retried = ok((await hs.write([item(5, [titled('co:5', 'Retitled', { hs_call_body: 'v2' })])]))[0]);
    expect(retried.created).toBe(false);
    expect(fake.find('calls', 'call_sync_id', 'co:5')).toEqual([
      expect.objectContaining({ properties: expect.objectContaining({ hs_call_title: 'Inbound call', hs_call_body: 'v2' }) }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
  });

  it('tells the existing call from the new one when HubSpot refuses their create as a whole (409 CONFLICT)', async () => {
    const hs = target();
    const existing = ok((await hs.write([item(6, [titled('co:6', 'First title')])]))[0]);
    fake.rejectWholeBatch = true;
    fake.resetCounters();
    // The worker lost the id of co:6 (a write it timed out on): both look new.
    const results = await hs.write([item(6, [titled('co:6', 'Second title', { hs_call_body: 'v2' })]), item(7, [titled('co:7')])]);
    expect(ok(results[0])).toMatchObject({ created: false, ids: existing.ids });
    expect(ok(results[1]).created).toBe(true);
    expect(fake.find('calls', 'call_sync_id', 'co:6')).toEqual([
      expect.objectContaining({ properties: expect.objectContaining({ hs_call_title: 'First title', hs_call_body: 'v2' }) }),
    ]);
    expect(titleOf('co:7')).toEqual(['Inbound call']);
    // HubSpot quoted the existing call's key: no bisection.
    expect(fake.counters()).toEqual({ create: 2, upsert: 1 });
  });
});

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

describe('HubSpotTarget whole-batch refusals (no bisection storm)', () => {
  it('fails 100 new calls carrying a property the portal lacks in one create, with HubSpot\'s message', async () => {
    const hs = target();
    const results = await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nx:${i}`, { hs_call_mood: 'happy' })])));
    for (const result of results) {
      expect(failed(result).error).toMatchObject({ kind: 'mapping', retryable: false, crmCode: 'VALIDATION_ERROR', message: 'VALIDATION_ERROR: Property "hs_call_mood" does not exist' });
    }
    expect(fake.counters()).toEqual({ property: 1, create: 1 });
  });

  it('fails 100 known calls carrying a property the portal lacks in one upsert', async () => {
    const hs = target();
    const written = (await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nu:${i}`)])))).map((r) => ok(r));
    fake.resetCounters();
    const results = await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nu:${i}`, { hs_call_mood: 'happy' })], written[i]?.ids)));
    for (const result of results) {
      expect(failed(result).error).toMatchObject({ kind: 'mapping', httpStatus: 400, crmCode: 'VALIDATION_ERROR' });
    }
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('isolates a known call with a bad value in one more upsert: HubSpot quotes the value', async () => {
    const hs = target();
    const written = (await hs.write(Array.from({ length: 20 }, (_, i) => item(i, [call(`bv:${i}`)])))).map((r) => ok(r));
    fake.resetCounters();
    const results = await hs.write(
      Array.from({ length: 20 }, (_, i) => item(i, [call(`bv:${i}`, i === 7 ? { hs_call_status: 'EXPLODED' } : { hs_call_body: 'wrap-up' })], written[i]?.ids)),
    );
    expect(failed(results[7]).error).toMatchObject({ kind: 'permanent', httpStatus: 400 });
    expect(failed(results[7]).error.message).toContain('EXPLODED was not one of the allowed options');
    results.forEach((r, i) => {
      if (i !== 7) ok(r);
    });
    expect(fake.counters()).toEqual({ upsert: 2 });
    expect(fake.records('calls').filter((c) => c.properties['hs_call_body'] === 'wrap-up')).toHaveLength(19);
  });

  it('writes 101 new calls as two creates of at most 100, one call each', async () => {
    const hs = target();
    const results = await hs.write(Array.from({ length: 101 }, (_, i) => item(i, [call(`ch:${i}`)])));
    results.forEach((r) => expect(ok(r).created).toBe(true));
    expect(fake.requests('create')).toBe(2);
    const calls = fake.records('calls');
    expect(calls).toHaveLength(101);
    expect(new Set(calls.map((c) => c.properties['call_sync_id'])).size).toBe(101);
  });
});

describe('HubSpotTarget rate limits and quota', () => {
  it('honours Retry-After on a 429: holds requests until then, then carries on', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 30 }, WRITES);
    const limited = await rejection(hs.write([item(1, [call('r:1')])]));
    expect(limited).toMatchObject({ kind: 'transient', httpStatus: 429, crmCode: 'TEN_SECONDLY_ROLLING' });
    expect(limited.retryAt?.getTime()).toBe(clock.now() + 30_000);

    const before = fake.requests();
    expect(await rejection(hs.write([item(1, [call('r:1')])]))).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(fake.requests()).toBe(before);

    clock.advance(30_000);
    ok((await hs.write([item(1, [call('r:1')])]))[0]);
    expect(fake.records('calls')).toHaveLength(1);
  });

  it('waits the 10-second window out after a 429 without Retry-After', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    fake.failNext(1, { type: 'rate-limit' }, WRITES);
    expect((await rejection(hs.write([item(1, [call('r:2')])]))).retryAt?.getTime()).toBe(clock.now() + 10_000);
  });

  it('paces itself under the burst limit HubSpot announces instead of running into 429', async () => {
    const clock = new ManualClock();
    fake.tenSecondLimit = 5;
    const hs = target({}, clock);
    // The id property's definition, then three creates: four of the five.
    for (let i = 0; i < 3; i += 1) ok((await hs.write([item(i, [call(`b:${i}`)])]))[0]);
    const held = await rejection(hs.write([item(9, [call('b:9')])]));
    expect(held).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(fake.requests()).toBe(4);
    clock.advance((held.retryAt?.getTime() ?? 0) - clock.now());
    ok((await hs.write([item(9, [call('b:9')])]))[0]);
    expect(fake.records('calls')).toHaveLength(4);
  });

  it('pauses on the daily limit (policyName DAILY): pausedUntil set, no calls until it passes', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 15, 12, 20, 0));
    const hs = target({}, clock);
    fake.failNext(1, { type: 'quota' }, WRITES);
    const spent = await rejection(hs.write([item(1, [call('q:1')])]));
    expect(spent).toMatchObject({ kind: 'quota', retryable: true, httpStatus: 429, crmCode: 'DAILY' });
    const until = hs.pausedUntil();
    expect(until?.toISOString()).toBe('2025-01-15T13:00:00.000Z');
    expect(spent.retryAt).toEqual(until);

    const before = fake.requests();
    expect(await rejection(hs.write([item(2, [call('q:2')])]))).toMatchObject({ kind: 'quota', retryAt: until });
    expect(fake.requests()).toBe(before);
    expect(fake.records('calls')).toHaveLength(0);

    clock.advance(40 * 60_000);
    expect(hs.pausedUntil()).toBeUndefined();
    ok((await hs.write([item(1, [call('q:1')])]))[0]);
    expect(fake.records('calls')).toHaveLength(1);
  });

  it('pauses as soon as X-HubSpot-RateLimit-Daily-Remaining reaches 0', async () => {
    const hs = target({}, new ManualClock());
    fake.dailyLimit = 2;
    ok((await hs.write([item(1, [call('d:1')])]))[0]);
    expect(hs.pausedUntil()).toBeDefined();
    expect(await rejection(hs.write([item(2, [call('d:2')])]))).toMatchObject({ kind: 'quota' });
    expect(fake.requests()).toBe(2); // the id property's definition, then the create
  });
});

describe('HubSpotTarget lookups', () => {
  it('associates the contact whose number is stored in any format, and not a look-alike abroad', async () => {
    const formatted = fake.addContact({ firstname: 'Formatted', phone: '(555) 123-4567' });
    const mobile = fake.addContact({ firstname: 'Mobile', mobilephone: '555.222.3333' });
    const intl = fake.addContact({ firstname: 'Intl', phone: '+1-555-987-6543' });
    fake.addContact({ firstname: 'Look-alike', phone: '+44 555 123 4567' });
    const hs = target();
    const results = await hs.write([
      item(1, [call('m:1', {}, contactBy('+15551234567'))]),
      item(2, [call('m:2', {}, contactBy('+15552223333'))]),
      item(3, [call('m:3', {}, contactBy('+15559876543'))]),
      item(4, [call('m:4', {}, contactBy('+15550000001'))]),
    ]);
    const ids = results.map((r) => ok(r).ids);
    expect(fake.associationsOf('calls', ids[0]?.['m:1'] ?? '', 'contacts')).toEqual([formatted]);
    expect(fake.associationsOf('calls', ids[1]?.['m:2'] ?? '', 'contacts')).toEqual([mobile]);
    expect(fake.associationsOf('calls', ids[2]?.['m:3'] ?? '', 'contacts')).toEqual([intl]);
    expect(fake.associationsOf('calls', ids[3]?.['m:4'] ?? '', 'contacts')).toEqual([]);
    expect((ok(results[3]).sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect((ok(results[0]).sent as unknown as SentPayload).records[0]?.associations).toEqual([{ toObject: 'contacts', toId: formatted }]);
  });

  it('associates nothing when a number matches several contacts, unless told to take the first', async () => {
    const older = fake.addContact({ phone: '555-300-2000' });
    fake.addContact({ mobilephone: '+1 555 300 2000' });
    const none = ok((await target().write([item(1, [call('amb:1', {}, contactBy('+15553002000'))])]))[0]);
    expect(fake.associationsOf('calls', none.ids['amb:1'] ?? '', 'contacts')).toEqual([]);
    const first = ok((await target({ HUBSPOT_AMBIGUOUS_MATCH: 'first' }).write([item(2, [call('amb:2', {}, contactBy('+15553002000'))])]))[0]);
    expect(fake.associationsOf('calls', first.ids['amb:2'] ?? '', 'contacts')).toEqual([older]);
  });

  it('sets the owner found by email; an unknown email leaves it unset', async () => {
    const owner = fake.addOwner({ email: 'Rep@Example.com' });
    const hs = target();
    const results = await hs.write([
      item(1, [call('o:1', {}, { hubspot_owner_id: { by: 'email', value: 'rep@example.com' } })]),
      item(2, [call('o:2', {}, { hubspot_owner_id: { by: 'email', value: 'nobody@example.com' } })]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.find('calls', 'call_sync_id', 'o:1')[0]?.properties['hubspot_owner_id']).toBe(owner);
    expect(fake.find('calls', 'call_sync_id', 'o:2')[0]?.properties).not.toHaveProperty('hubspot_owner_id');
  });

  it('looks up a batch with one contact search and one owner request, and repeats from the cache', async () => {
    const agents = Array.from({ length: 10 }, (_, i) => `agent${i}@example.com`);
    const owners = agents.map((email) => fake.addOwner({ email }));
    const numbers = Array.from({ length: 100 }, (_, i) => `+1555${String(8_000_000 + i)}`);
    numbers.slice(0, 40).forEach((n) => fake.addContact({ phone: n.slice(2) }));
    const hs = target();
    const batch = numbers.map((n, i) =>
      item(i, [call(`bulk:${i}`, {}, { ...contactBy(n), hubspot_owner_id: { by: 'email', value: agents[i % 10] ?? '' } })]),
    );
    const first = (await hs.write(batch)).map((r) => ok(r));
    // New calls are created with their contact associations inline.
    expect(fake.counters()).toEqual({ property: 1, search: 1, owners: 1, create: 1 });
    expect(fake.records('calls').filter((c) => owners.includes(c.properties['hubspot_owner_id'] ?? ''))).toHaveLength(100);
    expect(fake.associationsOf('calls', first[0]?.ids['bulk:0'] ?? '', 'contacts')).toHaveLength(1);

    fake.resetCounters();
    (await hs.write(batch.map((b, i) => ({ ...b, knownIds: first[i]?.ids ?? {} })))).forEach((r) => ok(r));
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('associates a known call with a contact that appeared since its last sync (v4 batch association)', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const first = ok((await hs.write([item(1, [call('late:1', {}, contactBy('+15556660000'))])]))[0]);
    const id = first.ids['late:1'] ?? '';
    expect(fake.associationsOf('calls', id, 'contacts')).toEqual([]);

    const contact = fake.addContact({ phone: '555 666 0000' });
    clock.advance(61_000); // "not found" is cached for a minute only
    const second = ok((await hs.write([item(1, [call('late:1', { hs_call_body: 'wrap-up' }, contactBy('+15556660000'))], first.ids)]))[0]);
    expect(fake.associationsOf('calls', id, 'contacts')).toEqual([contact]);
    expect((second.sent as unknown as SentPayload).records[0]).toMatchObject({ operation: 'upsert', associations: [{ toObject: 'contacts', toId: contact }] });
  });

  it('fails the call when it was written but HubSpot refused the association', async () => {
    const hs = target();
    const first = ok((await hs.write([item(1, [call('gone:1')])]))[0]);
    const results = await hs.write([item(1, [call('gone:1', {}, { contact: { by: 'id', value: '999999' } })], first.ids)]);
    expect(failed(results[0]).error).toMatchObject({
      kind: 'permanent',
      message: `written as calls ${first.ids['gone:1'] ?? ''} but not associated with contacts 999999: VALIDATION_ERROR: No contacts 999999 exists`,
    });
  });

  const ukCalls = () => {
    const numbers = Array.from({ length: 700 }, (_, i) => `+4420${String(70_000_000 + i)}`);
    numbers.filter((_, i) => i % 50 === 0).forEach((n) => fake.addContact({ phone: n }));
    // Seven writes of 100 calls at once, as seven worker slots would send them.
    return Array.from({ length: 7 }, (_, b) => numbers.slice(b * 100, b * 100 + 100).map((n, i) => item(b * 100 + i, [call(`uk:${b * 100 + i}`, {}, contactBy(n))])));
  };

  it('keeps under HubSpot search limits: 3,000 characters a body, 5 searches a second, though it needs more', async () => {
    fake.searchPerSecond = 5;
    const hs = target();
    const results = (await Promise.all(ukCalls().map((batch) => hs.write(batch)))).flat();
    results.forEach((r) => ok(r));
    expect(fake.requests('search')).toBeGreaterThan(5);
    const linked = fake.records('calls').filter((c) => fake.associationsOf('calls', c.id, 'contacts').length > 0);
    expect(linked).toHaveLength(14);
  });

  it('(control) the same searches unpaced run into HubSpot\'s 429', async () => {
    fake.searchPerSecond = 5;
    const hs = target({ HUBSPOT_SEARCH_PER_SECOND: '1000' });
    const settled = await Promise.allSettled(ukCalls().map((batch) => hs.write(batch)));
    expect(settled.some((s) => s.status === 'rejected' && s.reason instanceof SyncError && s.reason.httpStatus === 429)).toBe(true);
  });

  it('does not search for a number that is not E.164; the call is written without the contact', async () => {
    fake.addContact({ phone: '555 123 4567' });
    const result = ok((await target().write([item(1, [call('raw:1', {}, contactBy('555-123-4567'))])]))[0]);
    expect(fake.requests('search')).toBe(0);
    expect((result.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect(fake.associationsOf('calls', result.ids['raw:1'] ?? '', 'contacts')).toEqual([]);
  });

  it('asks for an owner again once its positive TTL has passed', async () => {
    const clock = new ManualClock();
    fake.addOwner({ email: 'ttl@example.com' });
    const hs = target({ LOOKUP_CACHE_TTL_SECONDS: '300' }, clock);
    const owner = { hubspot_owner_id: { by: 'email', value: 'ttl@example.com' } } as const;
    ok((await hs.write([item(1, [call('ttl:1', {}, owner)])]))[0]);
    clock.advance(299_000);
    ok((await hs.write([item(2, [call('ttl:2', {}, owner)])]))[0]);
    expect(fake.requests('owners')).toBe(1);
    clock.advance(2_000);
    ok((await hs.write([item(3, [call('ttl:3', {}, owner)])]))[0]);
    expect(fake.requests('owners')).toBe(2);
  });
});

describe('HubSpotTarget stale lookups', () => {
  it('drops a cached owner HubSpot refuses (INVALID_OWNER_ID) and retries the call soon, then writes it without', async () => {
    const clock = new ManualClock();
    const owner = fake.addOwner({ email: 'leaver@example.com' });
    const hs = target({}, clock);
    const by = { hubspot_owner_id: { by: 'email', value: 'leaver@example.com' } } as const;
    ok((await hs.write([item(1, [call('own:1', {}, by)])]))[0]);
    fake.archiveOwner(owner);

    const [refused] = await hs.write([item(2, [call('own:2', {}, by)])]);
    expect(failed(refused).error).toMatchObject({ kind: 'transient', retryable: true, retryAt: new Date(clock.now() + 5_000) });
    expect(failed(refused).error.message).toContain('is not a valid owner id');
    expect(fake.find('calls', 'call_sync_id', 'own:2')).toEqual([]);

    ok((await hs.write([item(2, [call('own:2', {}, by)])]))[0]);
    expect(fake.requests('owners')).toBe(2); // looked up afresh: the owner is gone
    expect(fake.find('calls', 'call_sync_id', 'own:2')[0]?.properties).not.toHaveProperty('hubspot_owner_id');
  });

  it('drops a cached contact whose association HubSpot refuses (merged, deleted), for a new call and a known one', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const gone = fake.addContact({ phone: '555 330 1000' });
    const goneToo = fake.addContact({ phone: '555 330 2000' });
    const known = ok((await hs.write([item(1, [call('as:1')])]))[0]);
    ok((await hs.write([item(8, [call('as:8', {}, contactBy('+15553301000'))]), item(9, [call('as:9', {}, contactBy('+15553302000'))])]))[0]);
    fake.removeContact(gone);
    fake.removeContact(goneToo);

    // New call: the association inline in the create is refused.
    const [fresh] = await hs.write([item(2, [call('as:2', {}, contactBy('+15553301000'))])]);
    expect(failed(fresh).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });
    expect(fake.find('calls', 'call_sync_id', 'as:2')).toHaveLength(0);
    // Known call: the call is updated, the v4 association refused.
    const [update] = await hs.write([item(1, [call('as:1', {}, contactBy('+15553302000'))], known.ids)]);
    expect(failed(update).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });
    expect(failed(update).error.message).toContain(`not associated with contacts ${goneToo}`);

    fake.resetCounters();
    const retried = (await hs.write([item(2, [call('as:2', {}, contactBy('+15553301000'))]), item(1, [call('as:1', {}, contactBy('+15553302000'))], known.ids)])).map((r) => ok(r));
    expect(fake.requests('search')).toBe(1); // both looked up afresh, in one search
    expect((retried[0]?.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect(fake.find('calls', 'call_sync_id', 'as:2')).toHaveLength(1);
  });

  it('fails the call for good, with HubSpot\'s message, when HubSpot refuses a contact looked up afresh in the same write', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const ghost = fake.addContact({ phone: '555 340 1000' });
    ok((await hs.write([item(1, [call('gh:1', {}, contactBy('+15553401000'))])]))[0]);
    // Deleted, but HubSpot's search keeps returning it.
    fake.removeContact(ghost, { stillSearchable: true });

    // The cached id may just be stale: retried soon, looked up afresh.
    const [cached] = await hs.write([item(2, [call('gh:2', {}, contactBy('+15553401000'))])]);
    expect(failed(cached).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });

    // The fresh lookup answers the same id, which HubSpot refuses again: no point retrying.
    clock.advance(5_000);
    fake.resetCounters();
    const [fresh] = await hs.write([item(2, [call('gh:2', {}, contactBy('+15553401000'))])]);
    expect(fake.requests('search')).toBe(1);
    const { error } = failed(fresh);
    expect(error).toMatchObject({ kind: 'permanent', retryable: false, httpStatus: 207, crmCode: 'VALIDATION_ERROR', retryAt: undefined });
    expect(error.message).toBe(`VALIDATION_ERROR: Invalid association: no contacts with id ${ghost} (type 194)`);
    expect(fake.find('calls', 'call_sync_id', 'gh:2')).toEqual([]);
  });
});
