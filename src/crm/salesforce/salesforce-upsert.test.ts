import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { failed, ok, rejection } from '../../../test/support/crm-write';
import { item, salesforceTargets, task } from '../../../test/support/salesforce-write';
import type { CrmRecord } from '../../core/crm-record';
import type { SentPayload } from '../engine/sent-record';

const server = setupServer();
let fake: FakeSalesforce;
const { clientCredentials, target } = salesforceTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeSalesforce();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('SalesforceTarget writes', () => {
  it('creates a Task, then updates the same Task in place', async () => {
    const sf = target();
    const [first] = await sf.write([item(1, [task('enreach:call-1', { Description: 'ringing' })])]);
    const created = ok(first);
    expect(created.created).toBe(true);
    const id = created.ids['enreach:call-1'];
    expect(fake.tasks()).toHaveLength(1);

    const [second] = await sf.write([
      item(1, [task('enreach:call-1', { Description: 'answered, 3 min', CallDurationInSeconds: 180 })], { 'enreach:call-1': id ?? '' }),
    ]);
    const updated = ok(second);
    expect(updated.created).toBe(false);
    expect(updated.ids['enreach:call-1']).toBe(id);
    const tasks = fake.tasks();
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({
      Id: id,
      Call_Sync_Id__c: 'enreach:call-1',
      Description: 'answered, 3 min',
      CallDurationInSeconds: 180,
      TaskSubtype: 'Call',
      Status: 'Completed',
    });
    // The update carried no create-only field (the org would refuse it).
    const sent = updated.sent as unknown as SentPayload;
    expect(sent.records[0]?.payload).not.toHaveProperty('TaskSubtype');
    expect(sent.records[0]?.request).toBe('PATCH /services/data/v62.0/composite/sobjects/Task/Call_Sync_Id__c');
  });

  it('updates without sending TaskSubtype even when the id of the existing Task is not known', async () => {
    const sf = target();
    ok((await sf.write([item(1, [task('genesys-ocs:c-9', { Description: 'first' })])]))[0]);
    const [again] = await sf.write([item(1, [task('genesys-ocs:c-9', { Description: 'second' })])]);
    const result = ok(again);
    expect(result.created).toBe(false);
    expect(fake.tasks()).toEqual([expect.objectContaining({ Description: 'second', TaskSubtype: 'Call' })]);
    expect((result.sent as unknown as SentPayload).records[0]?.payload).not.toHaveProperty('TaskSubtype');
  });

  it('does not duplicate a Task when a write the org applied timed out and is retried', async () => {
    const sf = target(clientCredentials({ CRM_TIMEOUT_MS: '150' }));
    await sf.write([item(1, [task('hcc:slow-1')])]); // session established, Task created
    fake.failNext(1, { type: 'late', delayMs: 300 }, 'upsert');
    const timeout = await rejection(sf.write([item(2, [task('hcc:slow-2', { Description: 'v1' })])]));
    expect(timeout.kind).toBe('transient');
    expect(timeout.crmCode).toBe('TIMEOUT');
    expect(fake.taskByExternalId('hcc:slow-2')).toBeDefined(); // the org did apply it

    const [retried] = await sf.write([item(2, [task('hcc:slow-2', { Description: 'v2' })])]);
    expect(ok(retried).created).toBe(false);
    expect(fake.tasks().filter((t) => t['Call_Sync_Id__c'] === 'hcc:slow-2')).toEqual([
      expect.objectContaining({ Description: 'v2' }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200)); // let the late answer land
  });

  it('fails only the record the org rejects and writes the rest of the batch', async () => {
    fake.addValidationRule('Task', (t) => (t['Description'] === 'forbidden' ? 'Description may not say forbidden' : undefined));
    const sf = target();
    const results = await sf.write([
      item(1, [task('ucontact:a')]),
      item(2, [task('ucontact:b', { Status: 'Exploded' })]),
      item(3, [task('ucontact:c', { Description: 'forbidden' })]),
      item(4, [task('ucontact:d')]),
    ]);
    expect(ok(results[0]).created).toBe(true);
    const picklist = failed(results[1]).error;
    expect(picklist).toMatchObject({ kind: 'permanent', retryable: false, crmCode: 'INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST' });
    expect(picklist.message).toBe('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: Status: bad value for restricted picklist field: Exploded (Status)');
    expect(failed(results[2]).error).toMatchObject({
      kind: 'permanent',
      crmCode: 'FIELD_CUSTOM_VALIDATION_EXCEPTION',
      message: 'FIELD_CUSTOM_VALIDATION_EXCEPTION: Description may not say forbidden',
    });
    ok(results[3]);
    expect(fake.tasks().map((t) => t['Call_Sync_Id__c']).sort()).toEqual(['ucontact:a', 'ucontact:d']);
  });

  it('isolates a call whose fields the org rejects for the whole request (top-level errorCode), in one more request', async () => {
    const sf = target();
    const results = await sf.write([
      item(1, [task('webex-cc:1')]),
      item(2, [task('webex-cc:2')]),
      item(3, [task('webex-cc:3', { Disposition: 'Sale' })]), // no such standard field on Task
      item(4, [task('webex-cc:4')]),
      item(5, [task('webex-cc:5')]),
    ]);
    expect(failed(results[2]).error).toMatchObject({
      kind: 'mapping',
      retryable: false,
      httpStatus: 400,
      crmCode: 'INVALID_FIELD',
      message: "INVALID_FIELD: No such column 'Disposition' on sobject of type Task",
    });
    for (const i of [0, 1, 3, 4]) ok(results[i]);
    expect(fake.tasks()).toHaveLength(4);
    // The org named the field: the calls carrying it fail, the others go again at once.
    expect(fake.requests('upsert')).toBe(2);
  });

  it('retries a record the org could not lock (transient, per record)', async () => {
    const sf = target();
    fake.failNext(1, { type: 'row-lock' }, 'upsert');
    const [locked] = await sf.write([item(1, [task('enreach:lock')])]);
    expect(failed(locked).error).toMatchObject({ kind: 'transient', retryable: true, crmCode: 'UNABLE_TO_LOCK_ROW' });
    expect(fake.tasks()).toHaveLength(0);
    ok((await sf.write([item(1, [task('enreach:lock')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('writes the follow-up task of a call beside its activity', async () => {
    const sf = target();
    const followup: CrmRecord = {
      kind: 'followup',
      object: 'Task',
      externalId: 'hcc:77:callback',
      fields: { Subject: 'Call back', Status: 'Not Started', ActivityDate: '2025-01-16', TaskSubtype: 'Task' },
      createOnly: ['TaskSubtype'],
      lookups: {},
    };
    const [result] = await sf.write([item(1, [task('hcc:77'), followup])]);
    const written = ok(result);
    expect(Object.keys(written.ids).sort()).toEqual(['hcc:77', 'hcc:77:callback']);
    expect(fake.taskByExternalId('hcc:77:callback')).toMatchObject({ Subject: 'Call back', ActivityDate: '2025-01-16', TaskSubtype: 'Task' });
  });

  it('turns a network failure into a transient error', async () => {
    const sf = target();
    await sf.write([item(1, [task('a:1')])]);
    fake.failNext(1, { type: 'network' }, 'upsert');
    expect(await rejection(sf.write([item(2, [task('a:2')])]))).toMatchObject({ kind: 'transient', retryable: true });
    fake.failNext(1, { type: 'unavailable' }, 'upsert');
    expect(await rejection(sf.write([item(2, [task('a:2')])]))).toMatchObject({ kind: 'transient', httpStatus: 503, crmCode: 'SERVER_UNAVAILABLE' });
    expect(fake.taskByExternalId('a:2')).toBeUndefined();
  });

  it('stops at once when the caller aborts', async () => {
    fake.latencyMs = 500;
    const sf = target();
    const controller = new AbortController();
    const pending = sf.write([item(1, [task('a:abort')])], controller.signal);
    setTimeout(() => controller.abort(), 20);
    const started = Date.now();
    expect(await rejection(pending)).toMatchObject({ kind: 'transient', crmCode: 'ABORTED' });
    expect(Date.now() - started).toBeLessThan(400);
  });
});

describe('SalesforceTarget create-only fields', () => {
  it('treats TaskSubtype as create-only even when the mapping forgets to say so', async () => {
    const sf = target();
    const forgetful = (description: string): CrmRecord => ({ ...task('ucontact:f1', { Description: description }), createOnly: [] });
    const first = ok((await sf.write([item(1, [forgetful('first')])]))[0]);
    // Known id: TaskSubtype is left out of the update.
    const known = ok((await sf.write([item(1, [forgetful('second')], first.ids)]))[0]);
    expect((known.sent as unknown as SentPayload).records[0]?.payload).not.toHaveProperty('TaskSubtype');
    // Unknown id: the org refuses TaskSubtype (its error names the field) and the Task is updated without it.
    const unknown = ok((await sf.write([item(1, [forgetful('third')])]))[0]);
    expect(unknown.created).toBe(false);
    expect(fake.tasks()).toEqual([expect.objectContaining({ Description: 'third', TaskSubtype: 'Call' })]);
  });

  it('does not drop a field the org refuses on create as well: the call fails with its message', async () => {
    const sf = target();
    const [result] = await sf.write([item(1, [task('ucontact:f2', { CreatedDate: '2025-01-01T00:00:00Z' })])]);
    expect(failed(result).error).toMatchObject({ kind: 'permanent', crmCode: 'INVALID_FIELD_FOR_INSERT_UPDATE' });
    expect(failed(result).error.message).toContain('(CreatedDate)');
    expect(fake.tasks()).toHaveLength(0);
  });
});
