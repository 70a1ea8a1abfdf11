import { beforeAll, describe, expect, it } from 'vitest';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { syntheticEvents } from '../intake/synthetic-events';
import { readFixture, SHIPPED_DIR } from '../../test/support/mappings';
import { emptyActivity, type CallActivity } from '../core/activity';

/**
 * The value tables shipped with the defaults, pinned to the vendors'
 * documented codes and checked through the loaded mappings (a code in, the
 * label the CRM gets out), so an edit that renumbers or drops a code fails
 * here. Sources: the Genesys Outbound Contact Reference Manual, "Defined
 * Constants" (call results, record types, record statuses) and CfgDialMode;
 * HubSpot's default call outcomes.
 */

let set: LoadedMappings;
let busy: Record<string, unknown>;
beforeAll(async () => {
  const loaded = await loadMappings({ dir: SHIPPED_DIR, defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  set = loaded.set;
  busy = (await readFixture('genesys-ocs/contact-processed-busy.json')) as Record<string, unknown>;
});

/** A Genesys notification with these fields changed, folded alone. */
async function genesys(fields: Record<string, unknown>): Promise<CallActivity> {
  const payload = { ...busy, ...fields };
  const events = syntheticEvents('genesys-ocs', [{ payload }], { timeZones: { hcc: 'UTC' } });
  return set.fold('genesys-ocs', events[0]?.callKey ?? '', events);
}

const CALL_RESULTS = [
  'Ok', 'Transferred', 'Conferenced', 'General Error', 'System Error', 'Remote Release', 'Busy', 'No Answer', 'SIT Detected',
  'Answering Machine Detected', 'All Trunks Busy', 'SIT Invalid Num', 'SIT VC (Vacant Code)', 'SIT IC (Intercept)',
  'SIT Unknown Call State', 'SIT NC (No Circuit)', 'SIT RO (Reorder)', 'Fax Detected', 'Queue Full', 'Cleared', 'Overflowed',
  'Abandoned', 'Redirected', 'Forwarded', 'Consult', 'Pickedup', 'Dropped', 'Dropped on No Answer', 'Unknown Call Result',
  'Covered', 'Converse-On', 'Bridged', 'Silence', 'Answer', 'NU Tone', 'No Dial Tone', 'No Progress', 'No RingBack Tone',
  'No Established Detected', 'Pager Detected', 'Wrong Party', 'Dial Error', 'Call Drop Error', 'Switch Error',
  'No Port Available', 'Transfer Error', 'Stale', 'Agent CallBack Error', 'Group CallBack Error', 'Deafened', 'Held',
  'Do Not Call', 'Cancel Record', 'Wrong Number',
];

describe('Genesys GSW_CALL_RESULT: the whole documented table, 0..53', () => {
  it('labels every code with its documented name', async () => {
    expect(CALL_RESULTS).toHaveLength(54);
    const got: Record<number, unknown> = {};
    for (let code = 0; code < CALL_RESULTS.length; code++) {
      const a = await genesys({ GSW_CALL_RESULT: code });
      // With no agent disposition, the call result labels the call.
      got[code] = a.dispositionLabel === a.custom.callResult ? a.dispositionLabel : { label: a.dispositionLabel, callResult: a.custom.callResult };
    }
    expect(got).toEqual(Object.fromEntries(CALL_RESULTS.map((name, code) => [code, name])));
  });

  it('pins the issue’s examples, and keeps an undocumented code as its number', async () => {
    const label = async (code: number) => (await genesys({ GSW_CALL_RESULT: code })).dispositionLabel;
    expect([await label(6), await label(7), await label(9), await label(33), await label(53), await label(54)]).toEqual([
      'Busy',
      'No Answer',
      'Answering Machine Detected',
      'Answer',
      'Wrong Number',
      '54',
    ]);
  });
});

describe('Genesys record types, record statuses and dial modes', () => {
  it('GSW_RECORD_TYPE 0..7', async () => {
    const got = [];
    for (let code = 0; code <= 7; code++) got.push((await genesys({ GSW_RECORD_TYPE: code })).custom.recordType);
    expect(got).toEqual(['No Record Type', 'Unknown', 'General', 'Campaign Rescheduled', 'Personal Rescheduled', 'Personal Callback', 'Campaign Callback', 'No Call']);
  });

  it('GSW_RECORD_STATUS 0..9', async () => {
    const got = [];
    for (let code = 0; code <= 9; code++) got.push((await genesys({ GSW_RECORD_STATUS: code })).custom.recordStatus);
    expect(got).toEqual(['No Record Status', 'Ready', 'Retrieved', 'Updated', 'Stale', 'Cancelled', 'Agent Error', 'Chain Updated', 'Missed Callback', 'Chain Ready']);
  });

  it('GSW_DIAL_MODE 0..11 (CfgDialMode)', async () => {
    const got = [];
    for (let code = 0; code <= 11; code++) got.push((await genesys({ GSW_DIAL_MODE: code })).custom.dialMode);
    expect(got).toEqual([
      'No Dial Mode',
      'Predictive',
      'Progressive',
      'Preview',
      'Progressive with Seizing',
      'Predictive with Seizing',
      'Power',
      'Power with Seizing',
      'Push Preview',
      'Progressive GVP',
      'Predictive GVP',
      'Power GVP',
    ]);
  });
});

describe('HubSpot default call outcomes', () => {
  it('maps the six outcomes to HubSpot’s default GUIDs, and leaves others empty', async () => {
    const disposition = async (outcome: string) => {
      const activity: CallActivity = { ...emptyActivity('hcc', '1'), direction: 'outbound', startedAt: '2024-01-01T00:00:00.000Z', outcome, eventIds: [1] };
      return (await set.toCrm(activity, 'hubspot'))[0]?.fields.hs_call_disposition ?? null;
    };
    const got: Record<string, unknown> = {};
    for (const outcome of ['busy', 'connected', 'left_live_message', 'voicemail', 'no_answer', 'wrong_number', 'abandoned']) got[outcome] = await disposition(outcome);
    expect(got).toEqual({
      busy: '9d9162e7-6cf3-4944-bf63-4dff82258764', // Busy
      connected: 'f240bbac-87c9-4f6e-bf70-924b57d47db7', // Connected
      left_live_message: 'a4c4c377-d246-4b32-a13b-75a56a4cd0ff', // Left live message
      voicemail: 'b2cf5968-551e-4856-9783-52b3da59a7d0', // Left voicemail
      no_answer: '73a0d17f-1163-4015-bdd5-ec830791da20', // No answer
      wrong_number: '17b47fee-58de-441e-a44c-c6300d46f273', // Wrong number
      abandoned: null, // no default HubSpot outcome: left empty
    });
  });
});
