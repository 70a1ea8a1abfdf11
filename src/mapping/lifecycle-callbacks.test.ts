import { beforeAll, describe, expect, it } from 'vitest';
import { type CallActivity } from '../core/activity';
import { type CrmRecord } from '../core/crm-record';
import type { SourceName, StoredEvent } from '../core/event';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { copyMappings, fixturePayloads, readFixture } from '../../test/support/mappings';
import { events, foldCall, HCC_TZ, loadShippedMappings } from '../../test/support/lifecycle';

/**
 * The lifecycle rules for callbacks, declared in the mapping files and proven
 * here on the seed documents' sequences: a scheduled callback becomes a
 * follow-up task, and later events reschedule, complete or cancel it in place.
 */

let set: LoadedMappings;
beforeAll(async () => {
  set = await loadShippedMappings();
});

const fold = (source: SourceName, list: StoredEvent[]): Promise<CallActivity> => foldCall(set, source, list);

describe('callbacks become follow-up tasks', () => {
  const followup = (records: CrmRecord[]) => records.find((r) => r.kind === 'followup');

  it('Genesys: record type 5 with GSW_SCHEDULED_TIME; a later notification that is no longer a callback cancels it in place', async () => {
    const callback = (await readFixture('genesys-ocs/contact-processed-callback.json')) as Record<string, unknown>;
    const a = await fold('genesys-ocs', events('genesys-ocs', [{ payload: callback }]));
    expect(a.callback).toEqual({ dueAt: '2023-11-15T22:13:20.000Z', number: '+13125550123', notes: 'Personal Callback', agentEmail: 'john.roe@example.com', status: 'open' });
    const open = followup(await set.toCrm(a, 'salesforce'));
    expect(open?.fields).toMatchObject({ Subject: 'Call back +13125550123', Status: 'Not Started', IsReminderSet: true });

    const later = { ...callback, GSW_MESSAGE_GUID: 'later', GSW_TIMESTAMP: '1700090000.000', GSW_RECORD_TYPE: 2, GSW_SCHEDULED_TIME: undefined };
    for (const order of [[later, callback], [callback, later]]) {
      const b = await fold('genesys-ocs', events('genesys-ocs', order.map((payload) => ({ payload }))));
      // The callback keeps what it was, with its new status: the same Task is closed, not left open.
      expect(b.callback).toEqual({ ...a.callback, status: 'cancelled' });
      const sf = await set.toCrm(b, 'salesforce');
      expect(sf.map((r) => r.kind)).toEqual(['activity', 'followup']);
      expect(followup(sf)?.externalId).toBe(open?.externalId);
      expect(followup(sf)?.fields).toMatchObject({ Subject: 'Cancelled: call back +13125550123', Status: 'Completed', IsReminderSet: false, ActivityDate: '2023-11-15' });
      expect(followup(await set.toCrm(b, 'hubspot'))?.fields).toMatchObject({
        hs_timestamp: '2023-11-15T22:13:20.000Z',
        hs_task_subject: 'Cancelled: call back +13125550123',
        hs_task_status: 'COMPLETED',
      });
    }
  });

  it('Genesys: a Cancelled record (status 5) cancels the callback; a new callback time reopens it', async () => {
    const callback = (await readFixture('genesys-ocs/contact-processed-callback.json')) as Record<string, unknown>;
    const cancelled = { ...callback, GSW_MESSAGE_GUID: 'cancelled', GSW_TIMESTAMP: '1700001000.000', GSW_RECORD_STATUS: 5 };
    const moved = { ...callback, GSW_MESSAGE_GUID: 'moved', GSW_TIMESTAMP: '1700002000.000', GSW_SCHEDULED_TIME: '1700172800.000' };
    const pick = (a: CallActivity) => ({ dueAt: a.callback?.dueAt, status: a.callback?.status });
    expect(pick(await fold('genesys-ocs', events('genesys-ocs', [{ payload: cancelled }, { payload: callback }])))).toEqual({ dueAt: '2023-11-15T22:13:20.000Z', status: 'cancelled' });
    expect(pick(await fold('genesys-ocs', events('genesys-ocs', [{ payload: moved }, { payload: cancelled }, { payload: callback }])))).toEqual({
      dueAt: '2023-11-16T22:13:20.000Z',
      status: 'open',
    });
  });

  it('Genesys: an attempt that never was a callback has no follow-up at all', async () => {
    const answered = (await readFixture('genesys-ocs/contact-processed-answered.json')) as Record<string, unknown>;
    const a = await fold('genesys-ocs', events('genesys-ocs', [{ payload: answered }]));
    expect(a.callback).toBeNull();
    expect((await set.toCrm(a, 'salesforce')).map((r) => r.kind)).toEqual(['activity']);
  });

  it('Enreach: CallbackChanged is a follow-up only, the latest change wins', async () => {
    const changed = (await readFixture('enreach/CallbackChanged.json')) as Record<string, unknown>;
    const moved = { ...changed, Id: 'later-change', Timestamp: '2018-01-01T11:00:00.00', DueDate: '2018-01-02T09:00:00', LastAttemptNote: '' };
    for (const order of [[changed, moved], [moved, changed]]) {
      const a = await fold('enreach', events('enreach', order.map((payload) => ({ payload }))));
      expect(a.callback).toEqual({
        dueAt: '2018-01-02T09:00:00.000Z',
        number: '+358501231234',
        notes: 'Asked about invoice 2017-12\nNot before: 2018-01-01T12:00:00\nCustomerNo: C-1001',
        agentEmail: 'sample.agent@customer.com',
        status: 'open',
      });
      const sf = await set.toCrm(a, 'salesforce');
      expect(sf).toEqual([
        {
          kind: 'followup',
          object: 'Task',
          externalId: 'enreach:77aa0c1e-5d3b-4c2a-9f10-2b3c4d5e6f70:callback',
          fields: {
            Subject: 'Call back +358501231234',
            Description:
              'Callback requested\nDue: 2018-01-02T09:00:00.000Z\nNumber: +358501231234\nNotes: Asked about invoice 2017-12\nNot before: 2018-01-01T12:00:00\nCustomerNo: C-1001',
            TaskSubtype: 'Task',
            Type: 'Call',
            ActivityDate: '2018-01-02',
            ReminderDateTime: '2018-01-02T09:00:00.000Z',
            IsReminderSet: true,
            Status: 'Not Started',
            Priority: 'Normal',
          },
          createOnly: ['TaskSubtype'],
          lookups: { WhoId: { by: 'phone', value: '+358501231234' }, OwnerId: { by: 'email', value: 'sample.agent@customer.com' } },
        },
      ]);
      expect(await set.toCrm(a, 'hubspot')).toEqual([
        {
          kind: 'followup',
          object: 'tasks',
          externalId: 'enreach:77aa0c1e-5d3b-4c2a-9f10-2b3c4d5e6f70:callback',
          fields: {
            hs_timestamp: '2018-01-02T09:00:00.000Z',
            hs_task_subject: 'Call back +358501231234',
            hs_task_body: 'Callback requested<br>Number: +358501231234<br>Notes: Asked about invoice 2017-12<br>Not before: 2018-01-01T12:00:00<br>CustomerNo: C-1001',
            hs_task_status: 'NOT_STARTED',
            hs_task_type: 'CALL',
            hs_task_priority: 'MEDIUM',
          },
          createOnly: [],
          lookups: { hubspot_owner_id: { by: 'email', value: 'sample.agent@customer.com' }, contact: { by: 'phone', value: '+358501231234' } },
        },
      ]);
    }
  });

  it('Enreach: a closed request completes its follow-up, whatever the order the changes arrive in', async () => {
    const sequence = await fixturePayloads('enreach/sequence-callback-closed.json');
    const list = events('enreach', sequence.map((payload) => ({ payload })));
    const open = await fold('enreach', list.slice(0, 2));
    expect(open.callback?.status).toBe('open');
    for (const order of [list, [...list].reverse(), [list[2], list[0], list[1]]]) {
      const a = await fold('enreach', order.filter((e): e is StoredEvent => e !== undefined));
      expect(a.callback).toMatchObject({ dueAt: '2018-01-01T14:00:00.000Z', status: 'done' });
      const sf = await set.toCrm(a, 'salesforce');
      expect(sf).toHaveLength(1);
      expect(sf[0]?.fields).toMatchObject({ Subject: 'Call back +358501231234', Status: 'Completed', IsReminderSet: false });
      expect((await set.toCrm(a, 'hubspot'))[0]?.fields).toMatchObject({ hs_task_subject: 'Call back +358501231234', hs_task_status: 'COMPLETED' });
    }
  });

  it('Enreach: the last attempt’s result type closes the request through callback_attempt_status', async () => {
    const changed = (await readFixture('enreach/CallbackChanged.json')) as Record<string, unknown>;
    const statusWith = async (table: string) => {
      const copy = await copyMappings();
      try {
        await copy.edit('enreach.yaml', 'callback_attempt_status: {}', `callback_attempt_status: ${table}`);
        const loaded = await loadMappings({ dir: copy.dir, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
        if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
        const a = await loaded.set.fold('enreach', 'k', events('enreach', [{ payload: changed }]));
        return [a.callback?.status, (await loaded.set.toCrm(a, 'salesforce'))[0]?.fields.Status];
      } finally {
        await copy.remove();
      }
    };
    // The fixture's last attempt is type 3 ("No answer, try after lunch").
    expect(await statusWith('{ 1: done }')).toEqual(['open', 'Not Started']);
    expect(await statusWith('{ 3: cancelled }')).toEqual(['cancelled', 'Completed']);
  });

  describe('HCC: a re-saved wrap form', () => {
    const save = async (changes: Record<string, unknown>, receivedAt: string) => ({
      payload: { ...((await readFixture('hcc/call-saved-callback.json')) as Record<string, unknown>), ...changes },
      eventType: 'call-saved',
      receivedAt: new Date(receivedAt),
    });
    const pick = (a: CallActivity) => ({ dispositionLabel: a.dispositionLabel, outcome: a.outcome, callback: a.callback });

    it('cancels the follow-up when the later save clears callback_time, whatever the fold order', async () => {
      const scheduled = await save({}, '2023-06-27T19:04:30Z');
      const cleared = await save({ agent_disp: 51, callback_time: null, wrap_time: 14 }, '2023-06-27T19:21:05Z');
      for (const order of [[scheduled, cleared], [cleared, scheduled]]) {
        const a = await fold('hcc', events('hcc', order));
        expect(pick(a)).toEqual({
          dispositionLabel: 'Sale',
          outcome: 'connected',
          callback: { dueAt: '2023-06-28T14:30:00.000Z', number: '+19725550177', notes: 'Callback scheduled', agentEmail: 'maria.lopez@example.com', status: 'cancelled' },
        });
        expect(followup(await set.toCrm(a, 'salesforce'))?.fields).toMatchObject({ Status: 'Completed', Subject: 'Cancelled: call back +19725550177' });
      }
    });

    it('takes the callback from the same save as the disposition', async () => {
      const first = await save({ agent_disp: 51, callback_time: '2023-06-29 10:00:00' }, '2023-06-27T19:04:30Z');
      const second = await save({ agent_disp: 12, callback_time: '2023-06-28 09:30:00' }, '2023-06-27T19:21:05Z');
      for (const order of [[first, second], [second, first]]) {
        const a = await fold('hcc', events('hcc', order));
        expect(pick(a)).toEqual({
          dispositionLabel: 'Callback scheduled',
          outcome: 'connected',
          callback: { dueAt: '2023-06-28T14:30:00.000Z', number: '+19725550177', notes: 'Callback scheduled', agentEmail: 'maria.lopez@example.com', status: 'open' },
        });
      }
      // A save that schedules a callback again, after one that cleared it, reopens it.
      const cleared = await save({ agent_disp: 51, callback_time: null }, '2023-06-27T19:10:00Z');
      expect(pick(await fold('hcc', events('hcc', [second, cleared, first]))).callback?.status).toBe('open');
    });

    it('breaks a tie between saves received together by their key: the same answer in any order, callback and disposition from one save', async () => {
      const at = '2023-06-27T19:04:30Z';
      const a = await save({ agent_disp: 51, callback_time: '2023-06-29 10:00:00' }, at);
      const b = await save({ agent_disp: 12, callback_time: '2023-06-28 09:30:00' }, at);
      const results = [];
      for (const order of [[a, b], [b, a]]) results.push(pick(await fold('hcc', events('hcc', order))));
      expect(results[1]).toEqual(results[0]);
      expect(results[0]?.callback?.notes).toBe(results[0]?.dispositionLabel);
    });
  });
});
