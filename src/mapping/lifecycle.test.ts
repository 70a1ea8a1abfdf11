import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { SourceName } from '../core/event';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { syntheticEvents } from '../intake/synthetic-events';
import { copyMappings, fixturePayloads, readFixture, SHIPPED_DIR } from '../../test/support/mappings';
import { MappingError } from '../core/errors';
import { type CrmRecord } from '../core/crm-record';
import { type CallActivity } from '../core/activity';
import { type StoredEvent } from '../core/event';

/**
 * The lifecycle rules the seed documents call for, declared in the mapping
 * files and proven here on their exact sequences.
 */

const HCC_TZ = 'America/Chicago';
let set: LoadedMappings;
beforeAll(async () => {
  const loaded = await loadMappings({ dir: SHIPPED_DIR, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  set = loaded.set;
});

function events(source: SourceName, payloads: { payload: Record<string, unknown>; eventType?: string; receivedAt?: Date }[], firstId = 1): StoredEvent[] {
  return syntheticEvents(source, payloads, { timeZones: { hcc: HCC_TZ }, firstId });
}

async function fold(source: SourceName, list: StoredEvent[]): Promise<CallActivity> {
  return set.fold(source, list[0]?.callKey ?? '', list);
}

describe('Webex CC: the courtesy callback with caller RONAs (seed 004, second table)', () => {
  let rona: StoredEvent[];
  beforeAll(async () => {
    rona = events('webex-cc', (await fixturePayloads('webex-cc/sequence-callback-rona.json')).map((payload) => ({ payload })));
  });

  it('replays the post’s rows in the order it lists them', () => {
    expect(rona.map((e) => e.eventType)).toEqual([
      'task:new', 'task:parked', 'task:connect', 'agent:state_change', 'task:parked', 'agent:state_change', 'task:ended',
      'task:connect', 'agent:state_change', 'agent:state_change', 'task:parked', 'task:ended',
      'task:connect', 'agent:state_change', 'task:parked', 'agent:state_change', 'task:ended',
      'task:connect', 'agent:state_change', 'task:parked', 'task:ended', 'agent:state_change',
      'task:connect', 'agent:state_change', 'task:connected', 'task:connected', 'agent:state_change', 'agent:state_change', 'agent:state_change',
      'task:ended', 'capture:available',
    ]);
  });

  it('is not over after any of the four RONA task:ended, only at the Customer Left task:ended', async () => {
    const states: { row: number; type: string; final: boolean; endedAt: string | null }[] = [];
    for (let row = 1; row <= rona.length; row++) {
      const a = await fold('webex-cc', rona.slice(0, row));
      states.push({ row, type: rona[row - 1]?.eventType ?? '', final: a.final, endedAt: a.endedAt });
    }
    const ended = states.filter((s) => s.type === 'task:ended' || s.type === 'capture:available');
    expect(ended).toEqual([
      { row: 7, type: 'task:ended', final: false, endedAt: null },
      { row: 12, type: 'task:ended', final: false, endedAt: null },
      { row: 17, type: 'task:ended', final: false, endedAt: null },
      { row: 21, type: 'task:ended', final: false, endedAt: null },
      { row: 30, type: 'task:ended', final: true, endedAt: '2022-10-14T18:58:02.000Z' },
      { row: 31, type: 'capture:available', final: true, endedAt: '2022-10-14T18:58:02.000Z' },
    ]);
    expect(states.filter((s) => s.final).map((s) => s.row)).toEqual([30, 31]);
  });

  it('folds the whole sequence into one complete activity', async () => {
    expect(await fold('webex-cc', rona)).toEqual({
      source: 'webex-cc',
      callKey: 'e1c9a6f2-3b4d-4c5e-9f60-7a8b9c0d1e02',
      externalId: 'webex-cc:e1c9a6f2-3b4d-4c5e-9f60-7a8b9c0d1e02',
      direction: 'outbound',
      customerNumber: '+14085550134',
      companyNumber: '+18005550100',
      agentId: null,
      agentEmail: 'agent.smith@example.com',
      agentName: null,
      queue: 'Customer Care',
      campaign: null,
      startedAt: '2022-10-14T18:34:03.000Z',
      answeredAt: '2022-10-14T18:54:49.000Z',
      endedAt: '2022-10-14T18:58:02.000Z',
      firstEventAt: '2022-10-14T18:34:03.000Z',
      // The conversation (task:connected to the end); the 20 minutes parked and re-queued after four RONAs are the wait.
      durationSeconds: 193,
      talkSeconds: 193,
      holdSeconds: null,
      wrapSeconds: null,
      waitSeconds: 1246,
      dispositionCode: null,
      dispositionLabel: null,
      outcome: 'connected',
      recordingUrl: 'https://api.wxcc-us1.cisco.com/v1/captures/e1c9a6f2-3b4d-4c5e-9f60-7a8b9c0d1e02',
      notes: null,
      final: true,
      callback: null,
      custom: { outboundType: 'COURTESY_CALLBACK', channelType: 'telephony', terminatingParty: 'Customer', endReason: 'Customer Left' },
      // The 12 agent:state_change rows are stored but not folded (classified ignore).
      eventIds: [1, 2, 3, 5, 7, 8, 11, 12, 13, 15, 17, 18, 20, 21, 23, 25, 26, 30, 31],
    });
  });

  it('ends on capture:available even when the final task:ended is missing', async () => {
    const withoutEnd = rona.filter((_, i) => i !== 29);
    const a = await fold('webex-cc', withoutEnd);
    expect({ final: a.final, endedAt: a.endedAt, outcome: a.outcome }).toEqual({ final: true, endedAt: null, outcome: 'connected' });
  });
});

describe('HCC: call-saved wins over call-created’s -1', () => {
  const lifecycle = async () => [
    { payload: (await readFixture('hcc/call-created.json')) as Record<string, unknown>, eventType: 'call-created' },
    { payload: (await readFixture('hcc/call-ended.json')) as Record<string, unknown>, eventType: 'call-ended' },
    { payload: (await readFixture('hcc/call-saved.json')) as Record<string, unknown>, eventType: 'call-saved' },
  ];
  const pick = (a: CallActivity) => ({ final: a.final, dispositionCode: a.dispositionCode, dispositionLabel: a.dispositionLabel, durationSeconds: a.durationSeconds, talkSeconds: a.talkSeconds, wrapSeconds: a.wrapSeconds });

  it('never takes -1 as a disposition', async () => {
    const [created, ended] = await lifecycle();
    if (!created || !ended) throw new Error('fixtures');
    expect(pick(await fold('hcc', events('hcc', [created])))).toEqual({ final: false, dispositionCode: null, dispositionLabel: null, durationSeconds: null, talkSeconds: 0, wrapSeconds: 0 });
    expect(pick(await fold('hcc', events('hcc', [created, ended])))).toEqual({ final: false, dispositionCode: null, dispositionLabel: null, durationSeconds: null, talkSeconds: 10, wrapSeconds: 0 });
  });

  it('gives the saved disposition whatever the arrival order', async () => {
    const [created, ended, saved] = await lifecycle();
    if (!created || !ended || !saved) throw new Error('fixtures');
    const want = { final: true, dispositionCode: '51', dispositionLabel: 'Sale', durationSeconds: 12, talkSeconds: 10, wrapSeconds: 5 };
    for (const order of [[created, ended, saved], [saved, created, ended], [ended, saved, created], [saved, ended, created]]) {
      expect(pick(await fold('hcc', events('hcc', order)))).toEqual(want);
    }
  });

  it('reads call_date in HCC_TIMEZONE and the callback_time as the follow-up due date', async () => {
    const saved = (await readFixture('hcc/call-saved-callback.json')) as Record<string, unknown>;
    const a = await fold('hcc', events('hcc', [{ payload: saved, eventType: 'call-saved' }]));
    expect({ startedAt: a.startedAt, callback: a.callback }).toEqual({
      startedAt: '2023-06-27T19:02:09.000Z',
      callback: { dueAt: '2023-06-28T14:30:00.000Z', number: '+19725550177', notes: 'Callback scheduled', agentEmail: 'maria.lopez@example.com', status: 'open' },
    });
  });
});

describe('uContact: the disposition may arrive before FinishInteraction', () => {
  it('keeps the disposition and becomes final when the interaction finishes', async () => {
    const finish = (await readFixture('ucontact/FinishInteraction.json')) as Record<string, unknown>;
    const disposition = (await readFixture('ucontact/InteractionDisposition.json')) as Record<string, unknown>;
    const early = await fold('ucontact', events('ucontact', [{ payload: disposition }]));
    expect({ final: early.final, dispositionCode: early.dispositionCode, notes: early.notes, endedAt: early.endedAt }).toEqual({
      final: false,
      dispositionCode: 'Venta / Tarjeta',
      notes: 'Cliente acepta plan anual',
      endedAt: null,
    });
    // HubSpot needs hs_timestamp to create the call: the disposition's own time stands in until FinishInteraction says when the call was.
    expect((await set.toCrm(early, 'hubspot'))[0]?.fields.hs_timestamp).toBe('2023-06-13T10:22:05.000Z');
    expect((await set.toCrm(early, 'salesforce'))[0]?.fields.ActivityDate).toBe('2023-06-13');
    const dispositionFirst = await fold('ucontact', events('ucontact', [{ payload: disposition }, { payload: finish }]));
    const finishFirst = await fold('ucontact', events('ucontact', [{ payload: finish }, { payload: disposition }]).reverse());
    expect(dispositionFirst.final).toBe(true);
    expect((await set.toCrm(dispositionFirst, 'hubspot'))[0]?.fields.hs_timestamp).toBe(dispositionFirst.startedAt);
    expect(dispositionFirst.dispositionCode).toBe('Venta / Tarjeta');
    expect({ ...finishFirst, eventIds: [] }).toEqual({ ...dispositionFirst, eventIds: [] });
  });

  it('keeps a malformed date raw and falls back to the received time, never a guess', async () => {
    const finish = { ...((await readFixture('ucontact/FinishInteraction.json')) as Record<string, unknown>), date: '2023-48-13 06:48:51' };
    const receivedAt = new Date('2023-06-13T10:21:41.250Z');
    const list = events('ucontact', [{ payload: finish, receivedAt }]);
    expect(list[0]?.vendorTimeRaw).toBe('2023-48-13 06:48:51');
    expect(list[0]?.vendorTime).toEqual(receivedAt);
    const a = await fold('ucontact', list);
    expect({ endedAt: a.endedAt, startedAt: a.startedAt, durationSeconds: a.durationSeconds, final: a.final }).toEqual({
      endedAt: '2023-06-13T10:21:41.250Z',
      startedAt: '2023-06-13T10:18:36.250Z',
      durationSeconds: 185,
      final: true,
    });
  });
});

describe('Genesys OCS: the same call attempt notified again after a reschedule', () => {
  it('is not final while a treatment holds the chain, and completes with the finalized notification', async () => {
    const [first, second] = await fixturePayloads('genesys-ocs/sequence-reschedule.json');
    if (!first || !second) throw new Error('fixture');
    const pick = (a: CallActivity) => ({
      final: a.final,
      dispositionCode: a.dispositionCode,
      dispositionLabel: a.dispositionLabel,
      outcome: a.outcome,
      agentEmail: a.agentEmail,
      endedAt: a.endedAt,
      durationSeconds: a.durationSeconds,
      recordStatus: a.custom.recordStatus,
    });
    expect(pick(await fold('genesys-ocs', events('genesys-ocs', [{ payload: first }])))).toEqual({
      final: false,
      dispositionCode: '9',
      dispositionLabel: 'Answering Machine Detected',
      outcome: 'answering_machine',
      agentEmail: null,
      // The call itself ended when the answering machine was detected (GSW_DIVERTED), 9 s after dialling.
      endedAt: '2023-11-14T22:29:49.000Z',
      durationSeconds: 9,
      recordStatus: 'Retrieved',
    });
    // The finalized notification completes the record; the call's end stays the diversion, not when OCS finished processing (GSW_COMPLETE_PROCESSING, 3.5 min later).
    const both = { final: true, dispositionCode: 'LEFT_VOICEMAIL', dispositionLabel: 'Left voicemail', outcome: 'voicemail', agentEmail: 'jane.doe@example.com', endedAt: '2023-11-14T22:29:49.000Z', durationSeconds: 9, recordStatus: 'Updated' };
    expect(pick(await fold('genesys-ocs', events('genesys-ocs', [{ payload: first }, { payload: second }])))).toEqual(both);
    expect(pick(await fold('genesys-ocs', events('genesys-ocs', [{ payload: second }, { payload: first }])))).toEqual(both);
  });

  it('treats a busy attempt held for a retry as done: no agent will finalize it', async () => {
    const busy = (await readFixture('genesys-ocs/contact-processed-busy.json')) as Record<string, unknown>;
    const a = await fold('genesys-ocs', events('genesys-ocs', [{ payload: busy }]));
    expect({ final: a.final, outcome: a.outcome, dispositionLabel: a.dispositionLabel, callback: a.callback }).toEqual({ final: true, outcome: 'busy', dispositionLabel: 'Busy', callback: null });
  });
});

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

describe('what does not reach the CRM', () => {
  it('writes nothing for a call whose events are all ignored', async () => {
    const state = (await readFixture('webex-cc/agent_state_change.json')) as Record<string, unknown>;
    const a = await fold('webex-cc', events('webex-cc', [{ payload: state }]));
    expect(a.eventIds).toEqual([]);
    expect(await set.toCrm(a, 'salesforce')).toEqual([]);
    expect(await set.toCrm(a, 'hubspot')).toEqual([]);
  });

  it('writes nothing for a uContact chat (crm.when)', async () => {
    const finish = { ...((await readFixture('ucontact/FinishInteraction.json')) as Record<string, unknown>), channel: 'webchat' };
    const a = await fold('ucontact', events('ucontact', [{ payload: finish }]));
    expect(a.custom.channel).toBe('webchat');
    expect(await set.toCrm(a, 'salesforce')).toEqual([]);
  });
});

describe('mapping errors at run time', () => {
  let m: Awaited<ReturnType<typeof copyMappings>> | undefined;
  afterEach(async () => {
    await m?.remove();
  });

  it('rejects a callback.status read from the payload that is not a status, naming the field and line', async () => {
    m = await copyMappings();
    const text = await m.read('enreach.yaml');
    const from = text.slice(text.indexOf('  status:\n    events: CallbackChanged'), text.indexOf('\n\nlifecycle:'));
    await m.edit('enreach.yaml', from, '  status: { events: CallbackChanged, path: ContactName }');
    const loaded = await loadMappings({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const changed = (await readFixture('enreach/CallbackChanged.json')) as Record<string, unknown>;
    const err = await loaded.set.fold('enreach', 'k', events('enreach', [{ payload: changed }])).catch((e: unknown) => e);
    const line = (await m.read('enreach.yaml')).split('\n').findIndex((l) => l.startsWith('  status: {')) + 1;
    expect({ message: (err as MappingError).message, details: (err as MappingError).details }).toEqual({
      message: 'callback.status needs one of open, done, cancelled, but the mapping gave string "Matti Meikäläinen"',
      details: { source: 'enreach', file: m.file('enreach.yaml'), line, field: 'callback.status' },
    });
  });

  it('rejects with a MappingError that names the field, file and line', async () => {
    m = await copyMappings();
    await m.edit('genesys-ocs.yaml', '  notes: { path: Other1 }', '  notes: { path: GSW_CALL_RESULT, const: x }');
    const bad = await loadMappings({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
    expect(bad.ok).toBe(false);
    await m.edit('genesys-ocs.yaml', '  notes: { path: GSW_CALL_RESULT, const: x }', '  agentName: { const: [a, b] }');
    const loaded = await loadMappings({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const answered = (await readFixture('genesys-ocs/contact-processed-answered.json')) as Record<string, unknown>;
    const err = await loaded.set.fold('genesys-ocs', 'k', events('genesys-ocs', [{ payload: answered }])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MappingError);
    const text = await m.read('genesys-ocs.yaml');
    const line = text.slice(0, text.indexOf('  agentName: { const')).split('\n').length;
    expect({ message: (err as MappingError).message, details: (err as MappingError).details }).toEqual({
      message: 'agentName needs text, but the mapping gave a list',
      details: { source: 'genesys-ocs', file: m.file('genesys-ocs.yaml'), line, field: 'agentName' },
    });
  });
});
