import { SOURCE_NAMES } from '../core/event';
import { afterEach, describe, expect, it } from 'vitest';
import { loadExamples, runExamples, type ExampleCase } from './examples';
import { copyMappings, SHIPPED_DIR } from '../../test/support/mappings';

/**
 * The example cases kept beside the mappings (mappings/examples/) run in
 * `npm test` too: an edit to a mapping that changes what an example expects
 * fails CI, exactly as `npm run mappings -- test` reports it.
 */

const shipped = await loadExamples(SHIPPED_DIR);
const cases: ExampleCase[] = shipped.ok ? shipped.cases : [];

describe('mapping examples (mappings/examples/)', () => {
  it('load without errors and cover every source', () => {
    expect(shipped.ok ? [] : shipped.errors).toEqual([]);
    expect([...new Set(cases.map((c) => c.source))].sort()).toEqual([...SOURCE_NAMES].sort());
  });

  it.each(cases.map((c) => [`${c.source}: ${c.name}`, c] as const))('%s', async (_name, example) => {
    const run = await runExamples(SHIPPED_DIR, [example]);
    expect(run.ok ? run.results.map((r) => r.failures) : run.errors).toEqual([[]]);
  });
});

describe('a failing example says what differs', () => {
  let m: Awaited<ReturnType<typeof copyMappings>> | undefined;
  afterEach(async () => {
    await m?.remove();
  });

  it('reports each field that differs, with the expected and actual values', async () => {
    m = await copyMappings();
    // A RevOps edit that changes the Salesforce subject and a HubSpot outcome GUID.
    await m.edit('crm/salesforce.yaml', 'template: "{direction|capitalize|or:Phone} call{dispositionLabel|prefix: – }"', 'template: "Call: {dispositionLabel}"');
    await m.edit('tables/hubspot.yaml', 'busy: 9d9162e7-6cf3-4944-bf63-4dff82258764', 'busy: 00000000-0000-0000-0000-000000000000');
    const loaded = await loadExamples(m.dir);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    const busy = loaded.cases.filter((c) => c.name.startsWith('busy'));
    const run = await runExamples(m.dir, busy);
    expect(run.ok ? run.results.map((r) => r.failures) : run.errors).toEqual([
      [
        'salesforce[0].fields.Subject: expected "Outbound call – Busy", got "Call: Busy"',
        'hubspot[0].fields.hs_call_disposition: expected "9d9162e7-6cf3-4944-bf63-4dff82258764", got "00000000-0000-0000-0000-000000000000"',
      ],
    ]);
  });

  it('reports an example file that does not follow the format, with file and line', async () => {
    m = await copyMappings();
    await m.edit('examples/ucontact.yaml', '      salesforce:', '      salesforse:');
    const loaded = await loadExamples(m.dir);
    const text = await m.read('examples/ucontact.yaml');
    const line = text.split('\n').findIndex((l) => l.includes('salesforse:')) + 1;
    expect(loaded.ok ? [] : loaded.errors).toEqual([
      { file: m.file('examples/ucontact.yaml'), line, column: 7, message: 'unknown key "salesforse" (did you mean "salesforce"?)' },
    ]);
  });
});
