import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { failed, ok, rejection } from '../../../test/support/crm-write';
import { WRITES, call, contactBy, hubspotTargets, item } from '../../../test/support/hubspot-write';
import type { CrmRecord } from '../../core/crm-record';
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
