import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { failed, ok } from '../../../test/support/crm-write';
import { call, contactBy, hubspotTargets, item } from '../../../test/support/hubspot-write';
import { ManualClock } from '../../../test/support/manual-clock';
import type { SentPayload } from '../engine/sent-record';
import { SyncError } from '../../core/errors';

const server = setupServer();
let fake: FakeHubSpot;
const { target } = hubspotTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeHubSpot();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('HubSpotTarget lookups', () => {
  it('associates the contact whose number is stored in any format, and not a look-alike abroad', async () => {
    const formatted = fake.addContact({ firstname: 'Formatted', phone: '(555) 123-4567' });
    const mobile = fake.addContact({ firstname: 'Mobile', mobilephone: '555.222.3333' });
    const intl = fake.addContact({ firstname: 'Intl', phone: '+1-555-987-6543' });
    fake.addContact({ firstname: 'Look-alike', phone: '+44 555 123 4567' });
    const hs = target();
    const results = await hs.write([
      item(1, [call('m:1', {}, contactBy('+15551234567'))]),
      item(2, [call('m:2', {}, contactBy('+15552223333'))]),
      item(3, [call('m:3', {}, contactBy('+15559876543'))]),
      item(4, [call('m:4', {}, contactBy('+15550000001'))]),
    ]);
    const ids = results.map((r) => ok(r).ids);
    expect(fake.associationsOf('calls', ids[0]?.['m:1'] ?? '', 'contacts')).toEqual([formatted]);
    expect(fake.associationsOf('calls', ids[1]?.['m:2'] ?? '', 'contacts')).toEqual([mobile]);
    expect(fake.associationsOf('calls', ids[2]?.['m:3'] ?? '', 'contacts')).toEqual([intl]);
    expect(fake.associationsOf('calls', ids[3]?.['m:4'] ?? '', 'contacts')).toEqual([]);
    expect((ok(results[3]).sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect((ok(results[0]).sent as unknown as SentPayload).records[0]?.associations).toEqual([{ toObject: 'contacts', toId: formatted }]);
  });

  it('associates nothing when a number matches several contacts, unless told to take the first', async () => {
    const older = fake.addContact({ phone: '555-300-2000' });
    fake.addContact({ mobilephone: '+1 555 300 2000' });
    const none = ok((await target().write([item(1, [call('amb:1', {}, contactBy('+15553002000'))])]))[0]);
    expect(fake.associationsOf('calls', none.ids['amb:1'] ?? '', 'contacts')).toEqual([]);
    const first = ok((await target({ HUBSPOT_AMBIGUOUS_MATCH: 'first' }).write([item(2, [call('amb:2', {}, contactBy('+15553002000'))])]))[0]);
    expect(fake.associationsOf('calls', first.ids['amb:2'] ?? '', 'contacts')).toEqual([older]);
  });

  it('sets the owner found by email; an unknown email leaves it unset', async () => {
    const owner = fake.addOwner({ email: 'Rep@Example.com' });
    const hs = target();
    const results = await hs.write([
      item(1, [call('o:1', {}, { hubspot_owner_id: { by: 'email', value: 'rep@example.com' } })]),
      item(2, [call('o:2', {}, { hubspot_owner_id: { by: 'email', value: 'nobody@example.com' } })]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.find('calls', 'call_sync_id', 'o:1')[0]?.properties['hubspot_owner_id']).toBe(owner);
    expect(fake.find('calls', 'call_sync_id', 'o:2')[0]?.properties).not.toHaveProperty('hubspot_owner_id');
  });

  it('looks up a batch with one contact search and one owner request, and repeats from the cache', async () => {
    const agents = Array.from({ length: 10 }, (_, i) => `agent${i}@example.com`);
    const owners = agents.map((email) => fake.addOwner({ email }));
    const numbers = Array.from({ length: 100 }, (_, i) => `+1555${String(8_000_000 + i)}`);
    numbers.slice(0, 40).forEach((n) => fake.addContact({ phone: n.slice(2) }));
    const hs = target();
    const batch = numbers.map((n, i) =>
      item(i, [call(`bulk:${i}`, {}, { ...contactBy(n), hubspot_owner_id: { by: 'email', value: agents[i % 10] ?? '' } })]),
    );
    const first = (await hs.write(batch)).map((r) => ok(r));
    // New calls are created with their contact associations inline.
    expect(fake.counters()).toEqual({ property: 1, search: 1, owners: 1, create: 1 });
    expect(fake.records('calls').filter((c) => owners.includes(c.properties['hubspot_owner_id'] ?? ''))).toHaveLength(100);
    expect(fake.associationsOf('calls', first[0]?.ids['bulk:0'] ?? '', 'contacts')).toHaveLength(1);

    fake.resetCounters();
    (await hs.write(batch.map((b, i) => ({ ...b, knownIds: first[i]?.ids ?? {} })))).forEach((r) => ok(r));
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('associates a known call with a contact that appeared since its last sync (v4 batch association)', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const first = ok((await hs.write([item(1, [call('late:1', {}, contactBy('+15556660000'))])]))[0]);
    const id = first.ids['late:1'] ?? '';
    expect(fake.associationsOf('calls', id, 'contacts')).toEqual([]);

    const contact = fake.addContact({ phone: '555 666 0000' });
    clock.advance(61_000); // "not found" is cached for a minute only
    const second = ok((await hs.write([item(1, [call('late:1', { hs_call_body: 'wrap-up' }, contactBy('+15556660000'))], first.ids)]))[0]);
    expect(fake.associationsOf('calls', id, 'contacts')).toEqual([contact]);
    expect((second.sent as unknown as SentPayload).records[0]).toMatchObject({ operation: 'upsert', associations: [{ toObject: 'contacts', toId: contact }] });
  });

  it('fails the call when it was written but HubSpot refused the association', async () => {
    const hs = target();
    const first = ok((await hs.write([item(1, [call('gone:1')])]))[0]);
    const results = await hs.write([item(1, [call('gone:1', {}, { contact: { by: 'id', value: '999999' } })], first.ids)]);
    expect(failed(results[0]).error).toMatchObject({
      kind: 'permanent',
      message: `written as calls ${first.ids['gone:1'] ?? ''} but not associated with contacts 999999: VALIDATION_ERROR: No contacts 999999 exists`,
    });
  });

  const ukCalls = () => {
    const numbers = Array.from({ length: 700 }, (_, i) => `+4420${String(70_000_000 + i)}`);
    numbers.filter((_, i) => i % 50 === 0).forEach((n) => fake.addContact({ phone: n }));
    // Seven writes of 100 calls at once, as seven worker slots would send them.
    return Array.from({ length: 7 }, (_, b) => numbers.slice(b * 100, b * 100 + 100).map((n, i) => item(b * 100 + i, [call(`uk:${b * 100 + i}`, {}, contactBy(n))])));
  };

  it('keeps under HubSpot search limits: 3,000 characters a body, 5 searches a second, though it needs more', async () => {
    fake.searchPerSecond = 5;
    const hs = target();
    const results = (await Promise.all(ukCalls().map((batch) => hs.write(batch)))).flat();
    results.forEach((r) => ok(r));
    expect(fake.requests('search')).toBeGreaterThan(5);
    const linked = fake.records('calls').filter((c) => fake.associationsOf('calls', c.id, 'contacts').length > 0);
    expect(linked).toHaveLength(14);
  });

  it('(control) the same searches unpaced run into HubSpot\'s 429', async () => {
    fake.searchPerSecond = 5;
    const hs = target({ HUBSPOT_SEARCH_PER_SECOND: '1000' });
    const settled = await Promise.allSettled(ukCalls().map((batch) => hs.write(batch)));
    expect(settled.some((s) => s.status === 'rejected' && s.reason instanceof SyncError && s.reason.httpStatus === 429)).toBe(true);
  });

  it('does not search for a number that is not E.164; the call is written without the contact', async () => {
    fake.addContact({ phone: '555 123 4567' });
    const result = ok((await target().write([item(1, [call('raw:1', {}, contactBy('555-123-4567'))])]))[0]);
    expect(fake.requests('search')).toBe(0);
    expect((result.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect(fake.associationsOf('calls', result.ids['raw:1'] ?? '', 'contacts')).toEqual([]);
  });

  it('asks for an owner again once its positive TTL has passed', async () => {
    const clock = new ManualClock();
    fake.addOwner({ email: 'ttl@example.com' });
    const hs = target({ LOOKUP_CACHE_TTL_SECONDS: '300' }, clock);
    const owner = { hubspot_owner_id: { by: 'email', value: 'ttl@example.com' } } as const;
    ok((await hs.write([item(1, [call('ttl:1', {}, owner)])]))[0]);
    clock.advance(299_000);
    ok((await hs.write([item(2, [call('ttl:2', {}, owner)])]))[0]);
    expect(fake.requests('owners')).toBe(1);
    clock.advance(2_000);
    ok((await hs.write([item(3, [call('ttl:3', {}, owner)])]))[0]);
    expect(fake.requests('owners')).toBe(2);
  });
});

describe('HubSpotTarget stale lookups', () => {
  it('drops a cached owner HubSpot refuses (INVALID_OWNER_ID) and retries the call soon, then writes it without', async () => {
    const clock = new ManualClock();
    const owner = fake.addOwner({ email: 'leaver@example.com' });
    const hs = target({}, clock);
    const by = { hubspot_owner_id: { by: 'email', value: 'leaver@example.com' } } as const;
    ok((await hs.write([item(1, [call('own:1', {}, by)])]))[0]);
    fake.archiveOwner(owner);

    const [refused] = await hs.write([item(2, [call('own:2', {}, by)])]);
    expect(failed(refused).error).toMatchObject({ kind: 'transient', retryable: true, retryAt: new Date(clock.now() + 5_000) });
    expect(failed(refused).error.message).toContain('is not a valid owner id');
    expect(fake.find('calls', 'call_sync_id', 'own:2')).toEqual([]);

    ok((await hs.write([item(2, [call('own:2', {}, by)])]))[0]);
    expect(fake.requests('owners')).toBe(2); // looked up afresh: the owner is gone
    expect(fake.find('calls', 'call_sync_id', 'own:2')[0]?.properties).not.toHaveProperty('hubspot_owner_id');
  });

  it('drops a cached contact whose association HubSpot refuses (merged, deleted), for a new call and a known one', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const gone = fake.addContact({ phone: '555 330 1000' });
    const goneToo = fake.addContact({ phone: '555 330 2000' });
    const known = ok((await hs.write([item(1, [call('as:1')])]))[0]);
    ok((await hs.write([item(8, [call('as:8', {}, contactBy('+15553301000'))]), item(9, [call('as:9', {}, contactBy('+15553302000'))])]))[0]);
    fake.removeContact(gone);
    fake.removeContact(goneToo);

    // New call: the association inline in the create is refused.
    const [fresh] = await hs.write([item(2, [call('as:2', {}, contactBy('+15553301000'))])]);
    expect(failed(fresh).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });
    expect(fake.find('calls', 'call_sync_id', 'as:2')).toHaveLength(0);
    // Known call: the call is updated, the v4 association refused.
    const [update] = await hs.write([item(1, [call('as:1', {}, contactBy('+15553302000'))], known.ids)]);
    expect(failed(update).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });
    expect(failed(update).error.message).toContain(`not associated with contacts ${goneToo}`);

    fake.resetCounters();
    const retried = (await hs.write([item(2, [call('as:2', {}, contactBy('+15553301000'))]), item(1, [call('as:1', {}, contactBy('+15553302000'))], known.ids)])).map((r) => ok(r));
    expect(fake.requests('search')).toBe(1); // both looked up afresh, in one search
    expect((retried[0]?.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['contact']);
    expect(fake.find('calls', 'call_sync_id', 'as:2')).toHaveLength(1);
  });

  it('fails the call for good, with HubSpot\'s message, when HubSpot refuses a contact looked up afresh in the same write', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    const ghost = fake.addContact({ phone: '555 340 1000' });
    ok((await hs.write([item(1, [call('gh:1', {}, contactBy('+15553401000'))])]))[0]);
    // Deleted, but HubSpot's search keeps returning it.
    fake.removeContact(ghost, { stillSearchable: true });

    // The cached id may just be stale: retried soon, looked up afresh.
    const [cached] = await hs.write([item(2, [call('gh:2', {}, contactBy('+15553401000'))])]);
    expect(failed(cached).error).toMatchObject({ kind: 'transient', retryAt: new Date(clock.now() + 5_000) });

    // The fresh lookup answers the same id, which HubSpot refuses again: no point retrying.
    clock.advance(5_000);
    fake.resetCounters();
    const [fresh] = await hs.write([item(2, [call('gh:2', {}, contactBy('+15553401000'))])]);
    expect(fake.requests('search')).toBe(1);
    const { error } = failed(fresh);
    expect(error).toMatchObject({ kind: 'permanent', retryable: false, httpStatus: 207, crmCode: 'VALIDATION_ERROR', retryAt: undefined });
    expect(error.message).toBe(`VALIDATION_ERROR: Invalid association: no contacts with id ${ghost} (type 194)`);
    expect(fake.find('calls', 'call_sync_id', 'gh:2')).toEqual([]);
  });
});
