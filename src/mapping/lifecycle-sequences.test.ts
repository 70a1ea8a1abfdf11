import { beforeAll, describe, expect, it } from 'vitest';
import { type CallActivity } from '../core/activity';
import type { SourceName, StoredEvent } from '../core/event';
import { type LoadedMappings } from './loaded-mappings';
import { fixturePayloads, readFixture } from '../../test/support/mappings';
import { events, foldCall, loadShippedMappings } from '../../test/support/lifecycle';

/**
 * The lifecycle rules the seed documents call for, declared in the mapping
 * files and proven here on their exact sequences: when each source's call is
 * over, which event's values win, and what does not reach the CRM. Follow-up
 * tasks: lifecycle-callbacks.test.ts; run-time mapping errors:
 * lifecycle-mapping-errors.test.ts.
 */

let set: LoadedMappings;
beforeAll(async () => {
  set = await loadShippedMappings();
});

const fold = (source: SourceName, list: StoredEvent[]): Promise<CallActivity> => foldCall(set, source, list);

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
