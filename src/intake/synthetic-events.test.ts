import { describe, expect, it } from 'vitest';
import { fixtureJson } from '../../test/support/webhooks';
import { groupByCall, pathEventFromFileName, syntheticEvents } from './synthetic-events';

describe('synthetic events (preview, examples, tests)', () => {
  it('names a URL-event source’s event after the file, and no other source’s', () => {
    expect(pathEventFromFileName('hcc', '/x/call-saved-callback-cleared.json')).toBe('call-saved');
    expect(pathEventFromFileName('hcc', 'regulation-f-declined.json')).toBe('regulation-f-declined');
    expect(pathEventFromFileName('hcc', 'notes.json')).toBeUndefined();
    expect(pathEventFromFileName('enreach', 'QueueCallInArrived.json')).toBeUndefined();
  });

  it('files bodies as intake does: the type where the vendor names it, the call, the zone of zone-less times', () => {
    const saved = fixtureJson('hcc', 'call-saved.json');
    const [hcc] = syntheticEvents('hcc', [{ payload: saved, eventType: 'call-saved' }], { timeZones: { hcc: 'America/Chicago' } });
    expect(hcc).toMatchObject({ id: 1, source: 'hcc', eventType: 'call-saved', callKey: '11142', vendorTime: new Date('2023-06-27T18:22:18.000Z') });
    const [utc] = syntheticEvents('hcc', [{ payload: saved, eventType: 'call-saved' }]);
    expect(utc?.vendorTime).toEqual(new Date('2023-06-27T13:22:18.000Z'));

    const body = fixtureJson('enreach', 'QueueCallInUserAllocated.json');
    const [enreach] = syntheticEvents('enreach', [{ payload: { ...body, EventType: 'QueueCallInArrived' }, eventType: 'UserCallInComing' }], { firstId: 7 });
    expect(enreach).toMatchObject({ id: 7, eventType: 'UserCallInComing', dedupeKey: body.Id, headers: {} });
  });

  it('refuses a body intake would refuse for a key too long to be an id, with the same message', () => {
    const body = { ...fixtureJson('enreach', 'QueueCallInUserAllocated.json'), Id: 'x'.repeat(1_001) };
    expect(() => syntheticEvents('enreach', [{ payload: body }])).toThrow(
      "the event's event id (dedupe key) is 1001 characters long; at most 1000 are accepted",
    );
  });

  it('files an event without a call under the event, and groups events by call in first-seen order', () => {
    const events = syntheticEvents('ucontact', [
      { payload: fixtureJson('ucontact', 'AgentBreak.json') },
      { payload: fixtureJson('ucontact', 'FinishInteraction.json') },
      { payload: fixtureJson('ucontact', 'InteractionDisposition.json') },
    ]);
    expect(events[0]?.callKey).toBe(`event:${events[0]?.dedupeKey}`);
    expect([...groupByCall(events).values()].map((list) => list.map((e) => e.id))).toEqual([[1], [2, 3]]);
  });
});
