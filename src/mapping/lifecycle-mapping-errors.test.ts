import { afterEach, describe, expect, it } from 'vitest';
import { MappingError } from '../core/errors';
import { loadMappings } from './load-mappings';
import { copyMappings, readFixture } from '../../test/support/mappings';
import { events, HCC_TZ } from '../../test/support/lifecycle';

/**
 * Lifecycle mapping errors that only show when a call is folded: each names
 * the field, file and line of the mapping at fault.
 */

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
