import { describe, expect, it } from 'vitest';
import { parsePath } from './paths';
import { syntheticEvents } from '../intake/synthetic-events';
import { MappingError } from '../core/errors';
import { compileConditionSnippet, compileValueSnippet, testEvent } from '../../test/support/mappings';

async function value(yaml: string, payload: Record<string, unknown>, options: Parameters<typeof compileValueSnippet>[1] = {}): Promise<unknown> {
  const c = compileValueSnippet(yaml, options);
  expect(c.errors).toEqual([]);
  return c.evaluate(payload);
}

async function holds(yaml: string, payload: Record<string, unknown>, options: Parameters<typeof compileConditionSnippet>[1] = {}): Promise<boolean> {
  const c = compileConditionSnippet(yaml, options);
  expect(c.errors).toEqual([]);
  return c.test(payload);
}

describe('paths', () => {
  it('parses names, indexes and @ event fields', () => {
    expect(parsePath('data.taskId')).toEqual({ meta: null, segments: ['data', 'taskId'] });
    expect(parsePath('CallbackAttempts[-1].Note')).toEqual({ meta: null, segments: ['CallbackAttempts', -1, 'Note'] });
    expect(parsePath('a[0][1]')).toEqual({ meta: null, segments: ['a', 0, 1] });
    expect(parsePath('@headers.etag')).toEqual({ meta: 'headers', segments: ['etag'] });
    expect(parsePath('@eventType')).toEqual({ meta: 'eventType', segments: [] });
  });

  it('says what is wrong with a bad path', () => {
    expect(parsePath('a..b')).toEqual({ error: '"a..b" is not a path: expected a name at ".b"' });
    expect(parsePath('a[x]')).toEqual({ error: '"a[x]" is not a path: unexpected "[x]"' });
    expect(parsePath('@')).toEqual({ error: '"@" is not a path: @ must be followed by a name such as @eventType' });
    expect(parsePath('')).toEqual({ error: 'a path must not be empty' });
  });
});

describe('references', () => {
  it('reads nested paths, list items and the last item', async () => {
    const payload = { data: { taskId: 't1' }, CallbackAttempts: [{ Note: 'first' }, { Note: 'last' }] };
    expect(await value('{ path: data.taskId }', payload)).toBe('t1');
    expect(await value('{ path: "CallbackAttempts[0].Note" }', payload)).toBe('first');
    expect(await value('{ path: "CallbackAttempts[-1].Note" }', payload)).toBe('last');
    expect(await value('{ path: data.missing.deeper }', payload)).toBeNull();
  });

  it('reads the event type, the call key and headers with @', async () => {
    const c = compileValueSnippet('{ template: "{@eventType} {@callKey} {@headers.ETag}" }');
    expect(c.errors).toEqual([]);
    const event = testEvent({}, { eventType: 'call-saved', callKey: '11142', headers: { etag: 'abc' } });
    expect(await c.evaluate({}, event)).toBe('call-saved 11142 abc');
  });

  it('files preview and example events with only the headers intake keeps, names lower-cased', () => {
    const [event] = syntheticEvents('genesys-ocs', [{ payload: { GSW_CALL_ATTEMPT_GUID: 'a', GSW_MESSAGE_GUID: 'm' }, headers: { ETag: 'm', Authorization: 'Basic c2VjcmV0', 'X-Custom': '1' } }], {
      timeZones: { hcc: 'UTC' },
    });
    expect(event?.headers).toEqual({ etag: 'm' });
  });

  it('treats empty text as missing', async () => {
    expect(await value('{ path: dnis, default: none }', { dnis: '' })).toBe('none');
    expect(await value('{ path: dnis, default: none }', { dnis: '   ' })).toBe('none');
  });
});

describe('transforms', () => {
  it('applies nullIf before the conversion and default after it', async () => {
    const tables = { dispositions: { '51': 'Sale' } };
    expect(await value('{ path: agent_disp, nullIf: [-1], table: dispositions }', { agent_disp: -1 }, { tables })).toBeNull();
    expect(await value('{ path: agent_disp, nullIf: [-1], table: dispositions }', { agent_disp: 51 }, { tables })).toBe('Sale');
    expect(await value('{ path: agent_disp, nullIf: [-1], table: dispositions, default: "n/a" }', { agent_disp: -1 }, { tables })).toBe('n/a');
  });

  it('keeps an unlisted code (fallback raw) unless told fallback: null', async () => {
    const tables = { codes: { '6': 'Busy' } };
    expect(await value('{ path: c, table: codes }', { c: 99 }, { tables })).toBe(99);
    expect(await value('{ path: c, table: codes, fallback: null }', { c: 99 }, { tables })).toBeNull();
    expect(await value('{ path: c, table: codes }', { c: '6' }, { tables })).toBe('Busy');
  });

  it('converts times, durations and phone numbers', async () => {
    expect(await value('{ path: t, time: epoch.millis }', { t: '1700000125.250' })).toBe('2023-11-14T22:15:25.250Z');
    expect(await value('{ path: t, time: local, zone: $hccTimezone }', { t: '2023-06-27 13:22:18' }, { zones: { hccTimezone: 'America/New_York' } })).toBe(
      '2023-06-27T17:22:18.000Z',
    );
    expect(await value('{ path: d, duration: ms }', { d: 185400 })).toBe(185);
    expect(await value('{ path: d, duration: { from: s, to: ms } }', { d: 12 })).toBe(12000);
    expect(await value('{ path: p, phone: true }', { p: '(972) 555-0138' })).toBe('+19725550138');
    expect(await value('{ path: p, phone: UY }', { p: '099123456' })).toBe('+59899123456');
    expect(await value('{ path: p, phone: true }', { p: '099123456' }, { phoneRegion: 'UY' })).toBe('+59899123456');
  });

  it('replaces, changes case and truncates text', async () => {
    expect(await value('{ path: campaign, replace: { pattern: "\\\\s*(<-|->)$", with: "" } }', { campaign: 'Ventas <-' })).toBe('Ventas');
    expect(await value('{ path: call_type, case: lower }', { call_type: 'Outbound' })).toBe('outbound');
    expect(await value('{ path: s, truncate: 5 }', { s: 'abcdefgh' })).toBe('abcde');
  });

  it('computes seconds between two times and shifts a time', async () => {
    const payload = { a: '1700000010.005', b: '1700000100.500' };
    expect(await value('{ secondsBetween: [{ path: a, time: epoch.millis }, { path: b, time: epoch.millis }] }', payload)).toBe(90);
    expect(await value('{ secondsBetween: [{ path: b, time: epoch.millis }, { path: a, time: epoch.millis }] }', payload)).toBeNull();
    expect(await value('{ addSeconds: [{ path: t }, { path: s }] }', { t: '2023-06-27T18:22:18.000Z', s: 12 })).toBe('2023-06-27T18:22:30.000Z');
    expect(await value('{ subtractSeconds: [{ path: t }, { path: s }] }', { t: '2023-06-27T18:22:18.000Z', s: 18 })).toBe('2023-06-27T18:22:00.000Z');
  });
});

describe('coalesce, conditions and constants', () => {
  it('coalesce takes the first value present', async () => {
    const spec = '{ coalesce: [{ path: GSW_AGENT_ID, email: true }, { path: GSW_AGENT_ID, table: agents, fallback: null }] }';
    const tables = { agents: { '4021': 'john.roe@example.com' } };
    expect(await value(spec, { GSW_AGENT_ID: 'jane.doe@example.com' }, { tables })).toBe('jane.doe@example.com');
    expect(await value(spec, { GSW_AGENT_ID: '4021' }, { tables })).toBe('john.roe@example.com');
    expect(await value(spec, { GSW_AGENT_ID: '9999' }, { tables })).toBeNull();
  });

  it('if/then/else picks by a condition', async () => {
    const spec = `
if: { path: data.direction, equals: INBOUND, ignoreCase: true }
then: { path: data.origin }
else: { path: data.destination }`;
    expect(await value(spec, { data: { direction: 'inbound', origin: 'A', destination: 'B' } })).toBe('A');
    expect(await value(spec, { data: { direction: 'OUTBOUND', origin: 'A', destination: 'B' } })).toBe('B');
  });

  it('evaluates every kind of test', async () => {
    expect(await holds('{ path: GSW_RECORD_TYPE, in: [5, 6] }', { GSW_RECORD_TYPE: '6' })).toBe(true);
    expect(await holds('{ path: GSW_RECORD_TYPE, notIn: [5, 6] }', { GSW_RECORD_TYPE: 3 })).toBe(true);
    expect(await holds('{ path: x, exists: false }', { x: '' })).toBe(true);
    expect(await holds('{ path: x, notEquals: 2 }', {})).toBe(true);
    expect(await holds('{ path: talk, gt: 0 }', { talk: '10' })).toBe(true);
    expect(await holds('{ path: talk, lte: 0 }', { talk: 'n/a' })).toBe(false);
    expect(await holds('{ path: r, matches: "^RONA[ _]Timer[ _]Expired$", ignoreCase: true }', { r: 'rona_timer_expired' })).toBe(true);
    expect(await holds('{ all: [{ path: a, equals: 1 }, { not: { path: b, equals: 2 } }] }', { a: 1, b: 3 })).toBe(true);
    expect(await holds('{ any: [{ path: a, equals: 2 }, { path: b, equals: 3 }] }', { a: 1, b: 3 })).toBe(true);
  });

  it('tests the event type and named conditions', async () => {
    const conditions = { rona: { all: [{ event: 'task:ended' }, { path: 'data.terminatingParty', equals: 'System' }] } };
    const c = compileConditionSnippet('{ not: { is: rona } }', { conditions });
    expect(c.errors).toEqual([]);
    const payload = { data: { terminatingParty: 'System' } };
    expect(await c.test(payload, testEvent(payload, { eventType: 'task:ended' }))).toBe(false);
    expect(await c.test(payload, testEvent(payload, { eventType: 'task:parked' }))).toBe(true);
  });

  it('keeps constants (a plain value is a constant)', async () => {
    expect(await value('Completed', {})).toBe('Completed');
    expect(await value('{ const: [1, 2] }', {})).toEqual([1, 2]);
  });
});

describe('templates', () => {
  it('fills placeholders, with filters and ?? alternatives', async () => {
    const spec = '{ template: "{direction|capitalize|or:Phone} call{dispositionLabel|prefix: – } by {agentName ?? agentEmail|upper}" }';
    expect(await value(spec, { direction: 'outbound', dispositionLabel: 'Sale', agentEmail: 'j@x.io' })).toBe('Outbound call – Sale by J@X.IO');
    expect(await value(spec, { agentName: 'Jo' })).toBe('Phone call by JO');
  });

  it('leaves out lines whose placeholders are all empty and joins lines as asked', async () => {
    const spec = `
template: |
  Disposition: {dispositionLabel}
  Recording: {recordingUrl}
  Notes: {notes}
lineBreak: "<br>"`;
    expect(await value(spec, { dispositionLabel: 'Sale', notes: 'line 1\nline 2' })).toBe('Disposition: Sale<br>Notes: line 1<br>line 2');
    expect(await value(spec, {})).toBeNull();
  });

  it('writes literal braces doubled', async () => {
    expect(await value('{ template: "{{x}} = {x}" }', { x: 1 })).toBe('{x} = 1');
  });
});

describe('JSONata escape hatch', () => {
  it('evaluates against the payload with the event bound as $event', async () => {
    const c = compileValueSnippet(`{ jsonata: "$join([level1, level2, level3][$ != ''], ' / ') & ' (' & $event.type & ')'" }`);
    expect(c.errors).toEqual([]);
    const payload = { level1: 'Venta', level2: 'Tarjeta', level3: '' };
    expect(await c.evaluate(payload, testEvent(payload, { eventType: 'InteractionDisposition' }))).toBe('Venta / Tarjeta (InteractionDisposition)');
  });

  it('reports a syntax error at load with its position', () => {
    const c = compileValueSnippet('{ jsonata: "$join(level1," }');
    expect(c.errors).toEqual([
      { file: 'snippet.yaml', line: 1, column: 12, message: 'JSONata: Expected ")" before end of expression (at character 13)' },
    ]);
  });

  it('turns an evaluation error into a MappingError naming the file and line', async () => {
    const c = compileValueSnippet('{ jsonata: "$number(x)" }');
    expect(c.errors).toEqual([]);
    const err = await c.evaluate({ x: 'abc' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MappingError);
    expect((err as MappingError).message).toBe('JSONata failed: Unable to cast value to a number: "abc"');
    expect((err as MappingError).details).toEqual({ source: 'test', file: 'snippet.yaml', line: 1 });
  });
});

/** Every input -> output example of the Transforms section of mappings/README.md, so the guide cannot drift from what the code does. */
describe('the transform examples in mappings/README.md', () => {
  const tables = { 'genesys.call_result': { 6: 'Busy' }, dispositions: { 51: 'Sale' } };
  const cases: [string, Record<string, unknown>, unknown][] = [
    ['{ path: agent_disp, nullIf: [-1] }', { agent_disp: -1 }, null],
    ['{ path: agent_disp, nullIf: [-1] }', { agent_disp: 51 }, 51],
    ['{ path: campaign, replace: { pattern: "\\\\s*(<-|->)\\\\s*$", with: "" } }', { campaign: 'Ventas<-' }, 'Ventas'],
    ['{ path: call_type, case: lower }', { call_type: 'Outbound' }, 'outbound'],
    ['{ path: GSW_CALL_TIME, time: epoch.millis }', { GSW_CALL_TIME: '1700000125.251' }, '2023-11-14T22:15:25.251Z'],
    ['{ path: ts, time: epoch-s }', { ts: 1700000000 }, '2023-11-14T22:13:20.000Z'],
    ['{ path: ts, time: epoch-s }', { ts: '1700000000.5' }, '2023-11-14T22:13:20.500Z'],
    ['{ path: data.createdTime, time: epoch-ms }', { data: { createdTime: 1665773882000 } }, '2022-10-14T18:58:02.000Z'],
    ['{ path: Timestamp, time: iso }', { Timestamp: '2018-01-01T08:01:23.45' }, '2018-01-01T08:01:23.450Z'],
    ['{ path: Timestamp, time: iso }', { Timestamp: '2023-06-27T13:22:18+02:00' }, '2023-06-27T11:22:18.000Z'],
    ['{ path: call_date, time: local, zone: America/Chicago }', { call_date: '2023-06-27 13:22:18' }, '2023-06-27T18:22:18.000Z'],
    ['{ path: call_date, time: local, zone: America/Chicago }', { call_date: '2023-48-13 06:48:51' }, null],
    ['{ path: startedAt, date: true }', { startedAt: '2023-11-15T03:30:00.000Z' }, '2023-11-15'],
    ['{ path: startedAt, date: true, zone: America/Chicago }', { startedAt: '2023-11-15T03:30:00.000Z' }, '2023-11-14'],
    ['{ path: call_duration, duration: s }', { call_duration: 12 }, 12],
    ['{ path: call_duration, duration: s }', { call_duration: -1 }, null],
    ['{ path: holdMs, duration: ms }', { holdMs: 95400 }, 95],
    ['{ path: durationSeconds, duration: { from: s, to: ms } }', { durationSeconds: 95 }, 95000],
    ['{ path: phone, phone: true }', { phone: '9725550138' }, '+19725550138'],
    ['{ path: phone, phone: true }', { phone: '12' }, '12'],
    ['{ path: callerIdNum, phone: UY }', { callerIdNum: '099123456' }, '+59899123456'],
    ['{ path: GSW_CALL_RESULT, table: genesys.call_result }', { GSW_CALL_RESULT: 6 }, 'Busy'],
    ['{ path: GSW_CALL_RESULT, table: genesys.call_result }', { GSW_CALL_RESULT: 99 }, 99],
    ['{ path: GSW_CALL_RESULT, table: genesys.call_result, fallback: null }', { GSW_CALL_RESULT: 99 }, null],
    ['{ path: lead_id, number: true }', { lead_id: '65439' }, 65439],
    ['{ path: lead_id, number: true }', { lead_id: 'n/a' }, null],
    ['{ path: lead_id, string: true }', { lead_id: 65439 }, '65439'],
    ['{ path: is_abandoned, boolean: true }', { is_abandoned: '1' }, true],
    ['{ path: is_abandoned, boolean: true }', { is_abandoned: 'true' }, true],
    ['{ path: is_abandoned, boolean: true }', { is_abandoned: 0 }, false],
    ['{ path: is_abandoned, boolean: true }', { is_abandoned: 'false' }, false],
    ['{ path: is_abandoned, boolean: true }', { is_abandoned: 'yes' }, null],
    ['{ path: GSW_AGENT_ID, email: true }', { GSW_AGENT_ID: ' jane.doe@example.com ' }, 'jane.doe@example.com'],
    ['{ path: GSW_AGENT_ID, email: true }', { GSW_AGENT_ID: '4021' }, null],
    ['{ path: notes, truncate: 7 }', { notes: 'Renewal confirmed' }, 'Renewal'],
    ['{ path: dnis, default: unknown }', { dnis: '' }, 'unknown'],
    ['{ path: dnis, default: unknown }', { dnis: '7001' }, '7001'],
    ['{ path: agent_disp, nullIf: [-1], table: dispositions, default: No disposition }', { agent_disp: -1 }, 'No disposition'],
  ];
  it.each(cases)('%s with %j', async (yaml, payload, want) => {
    expect(await value(yaml, payload, { tables })).toEqual(want);
  });

  const times: [string, Record<string, unknown>, unknown][] = [
    ['{ secondsBetween: [{ path: answeredAt }, { path: endedAt }] }', { answeredAt: '2023-11-14T22:13:28.050Z', endedAt: '2023-11-14T22:15:00.500Z' }, 92],
    ['{ secondsBetween: [{ path: answeredAt }, { path: endedAt }] }', { answeredAt: '2023-11-14T22:15:00.500Z', endedAt: '2023-11-14T22:13:28.050Z' }, null],
    ['{ secondsBetween: [{ path: answeredAt }, { path: endedAt }] }', { answeredAt: null, endedAt: '2023-11-14T22:13:28.050Z' }, null],
    ['{ addSeconds: [{ path: startedAt }, { path: durationSeconds }] }', { startedAt: '2023-06-27T18:22:18.000Z', durationSeconds: 12 }, '2023-06-27T18:22:30.000Z'],
    ['{ subtractSeconds: [{ path: endedAt }, { path: durationSeconds }] }', { endedAt: '2023-06-13T10:21:40.000Z', durationSeconds: 185 }, '2023-06-13T10:18:35.000Z'],
  ];
  it.each(times)('%s with %j', async (yaml, activity, want) => {
    expect(await value(yaml, activity, { scope: 'activity' })).toEqual(want);
  });
});
