import { afterEach, describe, expect, it } from 'vitest';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { syntheticEvents } from '../intake/synthetic-events';
import { copyMappings, readFixture } from '../../test/support/mappings';
import type { CrmRecord } from '../core/crm-record';

/**
 * A source file's crm: section adds, replaces and removes the CRM files'
 * fields and lookups for its own calls only. Proved on a copy of the
 * shipped mappings with the Genesys file edited; HCC (not edited) shows the
 * CRM files' own records are untouched.
 */

let m: Awaited<ReturnType<typeof copyMappings>> | undefined;
afterEach(async () => {
  await m?.remove();
  m = undefined;
});

async function load(dir: string): Promise<LoadedMappings> {
  const loaded = await loadMappings({ dir, defaultRegion: 'US', timeZones: { hcc: 'America/Chicago' } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.set;
}

async function records(set: LoadedMappings, source: 'genesys-ocs' | 'hcc', fixture: string, crm: 'salesforce' | 'hubspot', eventType?: string): Promise<CrmRecord[]> {
  const payload = (await readFixture(fixture)) as Record<string, unknown>;
  const events = syntheticEvents(source, [{ payload, eventType }], { timeZones: { hcc: 'America/Chicago' } });
  return set.toCrm(await set.fold(source, events[0]?.callKey ?? '', events), crm);
}

const GENESYS_OVERRIDES = `crm:
  # Campaign Groups also run SMS and email; only voice calls are call activities.
  when: { path: custom.mediaType, in: [voice, null] }
  salesforce:
    activity:
      fields:
        Genesys_Campaign__c: { path: campaign }
        # replaced: the CRM file has its own Subject template
        Subject: { template: "OCS {campaign}: {dispositionLabel}" }
        # removed
        Priority: null
        TaskSubtype: null
      lookups:
        WhatId: { by: field, object: Account, field: AccountNumber, value: { path: custom.customerId } }
        # replaced: by the agent id, not the email
        OwnerId: { by: id, value: { const: 005000000000001AAA } }
        # removed
        WhoId: null
    followup:
      fields:
        Priority: High
  hubspot:
    activity:
      fields:
        hs_call_title: { template: "OCS {campaign}" }
        hs_call_body: null
      lookups:
        contact: null
`;

describe('a source file overriding the CRM files', () => {
  it('replaces and removes fields and lookups for its own calls only', async () => {
    m = await copyMappings();
    const text = await m.read('genesys-ocs.yaml');
    await m.write('genesys-ocs.yaml', text.slice(0, text.indexOf('crm:\n')) + GENESYS_OVERRIDES);
    const set = await load(m.dir);

    const [task] = await records(set, 'genesys-ocs', 'genesys-ocs/contact-processed-answered.json', 'salesforce');
    expect(task?.fields.Subject).toBe('OCS Spring Renewals: Sale');
    expect(task?.fields.Genesys_Campaign__c).toBe('Spring Renewals');
    expect('Priority' in (task?.fields ?? {})).toBe(false);
    expect('TaskSubtype' in (task?.fields ?? {})).toBe(false);
    // A removed field is not sent on create either.
    expect(task?.createOnly).toEqual([]);
    expect(task?.lookups).toEqual({
      OwnerId: { by: 'id', value: '005000000000001AAA' },
      WhatId: { by: 'field', object: 'Account', field: 'AccountNumber', value: 'CUST-20931' },
    });

    const genesysFollowup = (await records(set, 'genesys-ocs', 'genesys-ocs/contact-processed-callback.json', 'salesforce')).find((r) => r.kind === 'followup');
    expect(genesysFollowup?.fields.Priority).toBe('High');

    const [call] = await records(set, 'genesys-ocs', 'genesys-ocs/contact-processed-answered.json', 'hubspot');
    expect(call?.fields.hs_call_title).toBe('OCS Spring Renewals');
    expect('hs_call_body' in (call?.fields ?? {})).toBe(false);
    expect(call?.lookups).toEqual({ hubspot_owner_id: { by: 'email', value: 'jane.doe@example.com' } });

    // HCC's calls still get the CRM files' records as they are.
    const [hccTask, hccFollowup] = await records(set, 'hcc', 'hcc/call-saved-callback.json', 'salesforce', 'call-saved');
    expect(hccTask?.fields).toMatchObject({ Subject: 'Outbound call – Callback scheduled', Priority: 'Normal', TaskSubtype: 'Call' });
    expect(hccTask?.createOnly).toEqual(['TaskSubtype']);
    expect(Object.keys(hccTask?.lookups ?? {})).toEqual(['WhoId', 'OwnerId', 'WhatId']);
    expect(hccFollowup?.fields.Priority).toBe('Normal');
    const [hccCall] = await records(set, 'hcc', 'hcc/call-saved-callback.json', 'hubspot', 'call-saved');
    expect(hccCall?.fields.hs_call_title).toBe('Outbound call – Callback scheduled');
    expect(Object.keys(hccCall?.lookups ?? {})).toEqual(['hubspot_owner_id', 'contact']);
  });

  it('refuses a createOnly that names a field the record does not write', async () => {
    m = await copyMappings();
    const text = await m.read('genesys-ocs.yaml');
    await m.write('genesys-ocs.yaml', `${text.slice(0, text.indexOf('crm:\n'))}crm:\n  salesforce:\n    activity:\n      fields:\n        TaskSubtype: null\n      createOnly: [TaskSubtype]\n`);
    const loaded = await loadMappings({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
    const lines = (await m.read('genesys-ocs.yaml')).split('\n');
    const line = lines.findIndex((l) => l.includes('createOnly: [TaskSubtype]')) + 1;
    expect(loaded.ok ? [] : loaded.errors).toEqual([
      { file: m.file('genesys-ocs.yaml'), line, column: (lines[line - 1]?.indexOf('TaskSubtype') ?? 0) + 1, message: 'createOnly names "TaskSubtype", which is not in fields' },
    ]);
  });
});
