import { rm, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatMappingErrors } from './file-errors';
import { loadMappings } from './load-mappings';
import { copyMappings } from '../../test/support/mappings';

/**
 * Every kind of mistake a RevOps user can make in a mapping file, with the
 * exact error they get: file, line, column (of the offending token) and what
 * is wrong. Positions are looked up in the edited text, so each assertion
 * proves the error points at that token.
 */

let m: Awaited<ReturnType<typeof copyMappings>>;
beforeEach(async () => {
  m = await copyMappings();
});
afterEach(async () => {
  await m.remove();
});

const options = () => ({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'America/Chicago' } });

/** 1-based line and column of the nth occurrence of `needle` in `text`. */
function pos(text: string, needle: string, nth = 1): { line: number; column: number } {
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`${needle} not found`);
  }
  const before = text.slice(0, at).split('\n');
  return { line: before.length, column: (before[before.length - 1]?.length ?? 0) + 1 };
}

async function errorsAfter(rel: string, from: string, to: string) {
  await m.edit(rel, from, to);
  const r = await loadMappings(options());
  expect(r.ok).toBe(false);
  return { errors: r.ok ? [] : r.errors, text: await m.read(rel), file: m.file(rel) };
}

describe('mapping validation', () => {
  it('loads the shipped mappings without errors', async () => {
    const r = await loadMappings(options());
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('reports a YAML syntax error where it is', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'direction: { path: call_type, case: lower }', 'direction: path: call_type');
    expect(errors).toEqual([{ file, ...pos(text, 'path: call_type'), message: 'YAML: Nested mappings are not allowed in compact mappings' }]);
  });

  it('reports a key that appears twice', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', '  customerNumber: { path: phone, phone: true }', '  customerNumber: { path: phone, phone: true }\n  customerNumber: { path: caller_id }');
    expect(errors).toEqual([{ file, ...pos(text, 'customerNumber', 2), message: 'this key appears twice in the same map' }]);
  });

  it('reports an unknown key at the key, with a suggestion', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', 'customerNumber: { path: GSW_PHONE', 'customerNumber: { pth: GSW_PHONE');
    expect(errors).toEqual([
      { file, ...pos(text, 'customerNumber: {'), message: 'activity.customerNumber: a value needs one of path, const, template, coalesce, if, jsonata, secondsBetween, addSeconds, subtractSeconds' },
      { file, ...pos(text, 'pth'), message: 'unknown key "pth" (did you mean "path"?)' },
    ]);
  });

  it('reports a value that is not one of the allowed ones', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', '{ path: GSW_CALL_TIME, time: epoch.millis }', '{ path: GSW_CALL_TIME, time: epoch_millis }');
    expect(errors).toEqual([
      {
        file,
        ...pos(text, 'epoch_millis'),
        message: 'activity.startedAt.coalesce[0].time: must be one of epoch-s, epoch-ms, epoch.millis, iso, local (got the text "epoch_millis")',
      },
    ]);
  });

  it('reports a wrong type', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'sort: [rank, time, received]', 'sort: rank');
    expect(errors).toEqual([{ file, ...pos(text, 'rank\n'), message: 'fold.sort: expected a list, got the text "rank"' }]);
  });

  it('reports two sources in one value and a conversion pair', async () => {
    const { errors, text, file } = await errorsAfter(
      'hcc.yaml',
      'customerNumber: { path: phone, phone: true }',
      'customerNumber: { path: phone, template: "{phone}", phone: true, table: x }',
    );
    expect(errors).toEqual([
      { file, ...pos(text, 'template: "{phone}"'), message: 'activity.customerNumber.template: a value takes one of path, const, template, coalesce, if, jsonata, secondsBetween, addSeconds, subtractSeconds (found path and template)' },
      { file, ...pos(text, 'table: x'), message: 'activity.customerNumber.table: one conversion per value (found phone and table); nest a value in coalesce or if/then to chain' },
    ]);
  });

  it('reports an unknown table with the closest name', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', 'table: genesys.call_result }', 'table: genesys.call_results }');
    expect(errors).toEqual([{ file, ...pos(text, 'genesys.call_results'), message: 'unknown table "genesys.call_results" (did you mean "genesys.call_result"?)' }]);
  });

  it('reports a rule for an event type that is not synced', async () => {
    const { errors, text, file } = await errorsAfter('webex-cc.yaml', '{ events: task:connected, path: data.createdTime', '{ events: task:conected, path: data.createdTime');
    expect(errors).toEqual([
      { file, ...pos(text, 'task:conected'), message: 'event type "task:conected" is not in events.sync, so it never reaches the fold (did you mean "task:connected"?)' },
    ]);
  });

  it('reports an event type listed twice', async () => {
    const { errors, text, file } = await errorsAfter('webex-cc.yaml', '    - agent:state_change    # agent availability, not the call', '    - agent:state_change\n    - task:new');
    expect(errors).toEqual([{ file, ...pos(text, 'task:new\n', 2), message: 'event type "task:new" is already listed under events.sync' }]);
  });

  it('reports a JSONata syntax error', async () => {
    const { errors, text, file } = await errorsAfter('ucontact.yaml', `"$join([level1, level2, level3][$ != ''], ' / ')"`, `"$join([level1, level2, level3][$ != ''], ' / '"`);
    expect(errors).toEqual([{ file, ...pos(text, `"$join([level1`), message: 'JSONata: Expected ")" before end of expression (at character 46)' }]);
  });

  it('reports a time zone that does not exist and an unknown setting', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'startedAt: { path: call_date, time: local, zone: $hccTimezone', 'startedAt: { path: call_date, time: local, zone: America/Chicagoo');
    expect(errors).toEqual([{ file, ...pos(text, 'America/Chicagoo'), message: '"America/Chicagoo" is not an IANA time zone (e.g. America/Chicago, Europe/Helsinki, UTC)' }]);
    await m.edit('hcc.yaml', 'America/Chicagoo', '$hccZone');
    const again = await loadMappings(options());
    expect(again.ok ? [] : again.errors).toEqual([{ file, ...pos(await m.read('hcc.yaml'), '$hccZone'), message: 'unknown setting $hccZone; the one a zone can name is $hccTimezone' }]);
  });

  it('lets a source file name only the zone setting of its own source', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', '- { path: GSW_CALL_TIME, time: epoch.millis }', '- { path: GSW_CALL_TIME, time: local, zone: $hccTimezone }');
    expect(errors).toEqual([
      { file, ...pos(text, '$hccTimezone'), message: 'unknown setting $hccTimezone; genesys-ocs has no zone setting, so name an IANA zone (e.g. America/Chicago)' },
    ]);
    await m.edit('genesys-ocs.yaml', '- { path: GSW_CALL_TIME, time: local, zone: $hccTimezone }', '- { path: GSW_CALL_TIME, time: epoch.millis }');
    await m.edit('ucontact.yaml', 'path: "@vendorTime", time: iso }', 'path: date, time: local, zone: $ucontactTimezone }');
    const own = await loadMappings({ ...options(), timeZones: { hcc: 'America/Chicago', ucontact: 'America/Montevideo' } });
    expect(own.ok ? [] : own.errors).toEqual([]);
  });

  it('reports time: local without a zone', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'path: callback_time, time: local, zone: $hccTimezone }', 'path: callback_time, time: local }');
    expect(errors).toEqual([
      { file, ...pos(text, 'time: local }'), message: 'callback.dueAt.time: time: local needs a zone (an IANA name such as America/Chicago, or $hccTimezone)' },
    ]);
  });

  it('reports an activity field that does not exist, in a CRM file', async () => {
    const { errors, text, file } = await errorsAfter('crm/salesforce.yaml', 'WhoId: { by: phone, value: { path: customerNumber } }', 'WhoId: { by: phone, value: { path: customerNumbr } }');
    expect(errors).toEqual([{ file, ...pos(text, 'customerNumbr'), message: '"customerNumbr" is not an activity field (did you mean "customerNumber"?)' }]);
  });

  it('reports an unknown template filter and an unknown custom field', async () => {
    const { errors, text, file } = await errorsAfter(
      'genesys-ocs.yaml',
      'Genesys_Campaign__c: { path: campaign }',
      'Genesys_Campaign__c: { template: "{campaign|uper} {custom.callingLis}" }',
    );
    expect(errors).toEqual([
      { file, ...pos(text, '"{campaign|uper}'), message: 'unknown template filter "uper" (did you mean "upper"?); known: upper, lower, capitalize, or, prefix, suffix' },
      { file, ...pos(text, '"{campaign|uper}'), message: '"custom.callingLis" is not defined in activity.custom (did you mean "custom.callingList"?)' },
    ]);
  });

  it('reports @headers.<name> for a header intake does not keep for the source', async () => {
    // Genesys keeps content-type, user-agent and etag (src/sources/genesys-ocs/settings.ts): anything else would always read empty.
    const { errors, text, file } = await errorsAfter(
      'genesys-ocs.yaml',
      '    chainId: { path: GSW_CHAIN_ID }',
      '    chainId: { path: GSW_CHAIN_ID }\n    messageId: { path: "@headers.etg" }\n    host: { template: "{@headers.Host} {@headers.ETag}" }',
    );
    expect(errors).toEqual([
      {
        file,
        ...pos(text, '"@headers.etg"'),
        message: '@headers.etg is never stored for genesys-ocs, so it would always read empty (did you mean @headers.etag?); the headers kept are content-type, user-agent, etag',
      },
      {
        file,
        ...pos(text, '"{@headers.Host}'),
        message: '@headers.host is never stored for genesys-ocs, so it would always read empty; the headers kept are content-type, user-agent, etag',
      },
    ]);
  });

  it('accepts @headers.<name> for a kept header, in any case', async () => {
    await m.edit('enreach.yaml', '    callbackId: { events: CallbackChanged, path: CallBackId }', '    callbackId: { events: CallbackChanged, path: CallBackId }\n    eventHeader: { path: "@headers.X-Benemen-Event" }');
    const r = await loadMappings(options());
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('reports a callback.status constant that is not a status, when the files load', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', '    then: cancelled\n    else: open', '    then: canceled\n    else: open');
    expect(errors).toEqual([{ file, ...pos(text, 'canceled'), message: 'callback.status must be one of open, done, cancelled, not "canceled" (did you mean "cancelled"?)' }]);
  });

  it('reports an unknown named condition', async () => {
    const { errors, text, file } = await errorsAfter('webex-cc.yaml', '    - { is: rona }', '    - { is: ronna }');
    expect(errors).toEqual([{ file, ...pos(text, 'ronna'), message: 'unknown condition "ronna" (did you mean "rona"?); name it under conditions:' }]);
  });

  it('reports a lookup by field without its object', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'WhatId: { by: field, object: Account, field: AccountNumber', 'WhatId: { by: field, field: AccountNumber');
    expect(errors).toEqual([{ file, ...pos(text, 'by: field'), message: 'crm.salesforce.activity.lookups.WhatId.by: by: field needs object (e.g. Account)' }]);
  });

  it('checks the structure of every file before compiling any', async () => {
    await m.edit('webex-cc.yaml', '    - { is: rona }', '    - { is: ronna }');
    await m.edit('hcc.yaml', 'sort: [rank, time, received]', 'sort: rank');
    const r = await loadMappings(options());
    // The structural error is reported; the unknown condition shows once the structure is right.
    expect(r.ok ? [] : r.errors.map((e) => e.message)).toEqual(['fold.sort: expected a list, got the text "rank"']);
  });

  it('reports a missing source file, a misnamed one and a stray one', async () => {
    await rm(m.file('webex-cc.yaml'));
    await writeFile(m.file('notes.yaml'), 'hello: world\n');
    const r = await loadMappings(options());
    expect(r.ok ? [] : r.errors).toEqual([
      { file: m.file('notes.yaml'), line: 0, column: 0, message: 'is not a source mapping: name it after a source (genesys-ocs, enreach, ucontact, hcc, webex-cc)' },
    ]);
    await rm(m.file('notes.yaml'));
    const again = await loadMappings(options());
    expect(again.ok ? [] : again.errors).toEqual([{ file: m.file('webex-cc.yaml'), line: 0, column: 0, message: 'is missing: every source needs a mapping file' }]);
  });

  it('reports a file whose source does not match its name', async () => {
    const { errors, text, file } = await errorsAfter('hcc.yaml', 'source: hcc', 'source: enreach');
    expect(errors).toEqual([{ file, ...pos(text, 'enreach'), message: 'source is "enreach" but the file is named hcc.yaml; name it enreach.yaml' }]);
  });

  it('formats errors as file:line:col message, one per line', async () => {
    const { errors, text, file } = await errorsAfter('genesys-ocs.yaml', 'table: genesys.call_result }', 'table: genesys.call_results }');
    const p = pos(text, 'genesys.call_results');
    expect(formatMappingErrors(errors)).toBe(`${file}:${p.line}:${p.column} unknown table "genesys.call_results" (did you mean "genesys.call_result"?)`);
    expect(formatMappingErrors([{ file: 'mappings/webex-cc.yaml', line: 0, column: 0, message: 'is missing' }])).toBe('mappings/webex-cc.yaml: is missing');
  });

  it('reports a bad DEFAULT_PHONE_REGION or HCC_TIMEZONE', async () => {
    const r = await loadMappings({ dir: m.dir, defaultRegion: 'XX', timeZones: { hcc: 'Mars/Base' } });
    expect(r.ok ? [] : r.errors).toEqual([
      { file: 'DEFAULT_PHONE_REGION', line: 0, column: 0, message: '"XX" is not a phone region libphonenumber knows' },
      { file: 'HCC_TIMEZONE', line: 0, column: 0, message: '"Mars/Base" is not an IANA time zone' },
    ]);
    const ucontact = await loadMappings({ dir: m.dir, defaultRegion: 'US', timeZones: { ucontact: 'Mars/Olympus' } });
    expect(ucontact.ok ? [] : ucontact.errors).toEqual([{ file: 'UCONTACT_TIMEZONE', line: 0, column: 0, message: '"Mars/Olympus" is not an IANA time zone' }]);
  });
});
