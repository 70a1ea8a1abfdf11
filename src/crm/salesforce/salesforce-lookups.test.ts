import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { failed, ok } from '../../../test/support/crm-write';
import { item, salesforceTargets, task } from '../../../test/support/salesforce-write';
import { ManualClock } from '../../../test/support/manual-clock';
import type { SentPayload } from '../engine/sent-record';

const server = setupServer();
let fake: FakeSalesforce;
const { clientCredentials, target } = salesforceTargets(() => fake);

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }));
afterAll(() => server.close());
beforeEach(() => {
  fake = new FakeSalesforce();
  server.use(...fake.handlers());
});
afterEach(() => server.resetHandlers());

describe('SalesforceTarget lookups', () => {
  const whoBy = (phone: string) => ({ WhoId: { by: 'phone', value: phone } as const });

  it('matches contacts whose numbers are stored in different formats, Contact before Lead', async () => {
    const formatted = fake.addContact({ LastName: 'Formatted', Phone: '(555) 123-4567' });
    const mobile = fake.addContact({ LastName: 'Mobile', MobilePhone: '555.222.3333' });
    const london = fake.addContact({ LastName: 'London', Phone: '020 7946 0958' });
    const lead = fake.addLead({ LastName: 'Lead only', Phone: '+1 555 987 6543' });
    fake.addLead({ LastName: 'Lead shadowed', Phone: '5552223333' });
    fake.addContact({ LastName: 'Look-alike', Phone: '+44 555 123 4567' }); // same digits, other country
    fake.addLead({ LastName: 'Converted', Phone: '+1 555 444 0000', IsConverted: true });

    const sf = target(clientCredentials({ DEFAULT_PHONE_REGION: 'US' }));
    const results = await sf.write([
      item(1, [task('m:1', {}, whoBy('+15551234567'))]),
      item(2, [task('m:2', {}, whoBy('+15552223333'))]),
      item(3, [task('m:3', {}, whoBy('+15559876543'))]),
      item(4, [task('m:4', {}, whoBy('+15550000000'))]),
      item(5, [task('m:5', {}, whoBy('+15554440000'))]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('m:1')?.['WhoId']).toBe(formatted);
    expect(fake.taskByExternalId('m:2')?.['WhoId']).toBe(mobile);
    expect(fake.taskByExternalId('m:3')?.['WhoId']).toBe(lead);
    expect(fake.taskByExternalId('m:4')).not.toHaveProperty('WhoId');
    expect(fake.taskByExternalId('m:5')).not.toHaveProperty('WhoId');
    expect((ok(results[3]).sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);

    // A national number stored without country code matches in its own region.
    const uk = target(clientCredentials({ DEFAULT_PHONE_REGION: 'GB' }));
    ok((await uk.write([item(6, [task('m:6', {}, whoBy('+442079460958'))])]))[0]);
    expect(fake.taskByExternalId('m:6')?.['WhoId']).toBe(london);
  });

  it('links nothing when a number matches several contacts, unless told to take the first', async () => {
    const older = fake.addContact({ LastName: 'Older', Phone: '+1 (555) 300-1000' });
    fake.addContact({ LastName: 'Newer', MobilePhone: '5553001000' });
    ok((await target().write([item(1, [task('amb:1', {}, whoBy('+15553001000'))])]))[0]);
    expect(fake.taskByExternalId('amb:1')).not.toHaveProperty('WhoId');

    const first = target(clientCredentials({ SALESFORCE_AMBIGUOUS_MATCH: 'first' }));
    ok((await first.write([item(2, [task('amb:2', {}, whoBy('+15553001000'))])]))[0]);
    expect(fake.taskByExternalId('amb:2')?.['WhoId']).toBe(older);
  });

  it('resolves the owner by email and a related record by field; unknown values leave the field unset', async () => {
    const rep = fake.addUser({ Email: 'Rep.One@Example.com' });
    fake.addUser({ Email: 'gone@example.com', IsActive: false });
    const account = fake.addAccount({ Name: 'Acme', AccountNumber: 'ACME-42' });
    const sf = target();
    const results = await sf.write([
      item(1, [task('o:1', {}, { OwnerId: { by: 'email', value: 'rep.one@example.com' }, WhatId: { by: 'field', object: 'Account', field: 'AccountNumber', value: 'ACME-42' } })]),
      item(2, [task('o:2', {}, { OwnerId: { by: 'email', value: 'gone@example.com' }, WhatId: { by: 'id', value: account } })]),
    ]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('o:1')).toMatchObject({ OwnerId: rep, WhatId: account });
    expect(fake.taskByExternalId('o:2')).not.toHaveProperty('OwnerId');
    expect(fake.taskByExternalId('o:2')).toMatchObject({ WhatId: account });
  });

  it('batches lookups into few requests and serves repeats from the cache', async () => {
    fake.addUser({ Email: 'agent@example.com' });
    const numbers = Array.from({ length: 150 }, (_, i) => `+1555${String(7_000_000 + i)}`);
    numbers.slice(0, 50).forEach((n, i) => fake.addContact({ LastName: `C${i}`, Phone: n.slice(2) }));
    const sf = target();
    const batch = numbers.map((n, i) =>
      item(i, [task(`bulk:${i}`, {}, { ...whoBy(n), OwnerId: { by: 'email', value: 'agent@example.com' } })]),
    );
    const firstResults = (await sf.write(batch)).map((r) => ok(r));
    expect(fake.tasks().filter((t) => typeof t['WhoId'] === 'string')).toHaveLength(50);
    expect(fake.tasks().every((t) => typeof t['OwnerId'] === 'string')).toBe(true);
    // 150 calls: SOSL chunks under 4,000 characters, one User query, one upsert.
    expect(fake.requests('sosl')).toBeLessThanOrEqual(2);
    expect(fake.requests('soql')).toBe(1);
    expect(fake.requests('upsert')).toBe(1);

    // The steady state: the worker passes the ids it stored, lookups are cached.
    fake.resetCounters();
    const again = batch.slice(0, 50).map((b, i) => ({ ...b, knownIds: firstResults[i]?.ids ?? {} }));
    (await sf.write(again)).forEach((r) => ok(r));
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('shares one search between writes that run at the same time', async () => {
    fake.addContact({ Phone: '555-600-0001' });
    const sf = target();
    await sf.write([item(0, [task('warm:0')])]); // session first
    fake.resetCounters();
    await Promise.all([
      sf.write([item(1, [task('share:1', {}, whoBy('+15556000001'))])]),
      sf.write([item(2, [task('share:2', {}, whoBy('+15556000002'))])]),
      sf.write([item(3, [task('share:3', {}, whoBy('+15556000001'))])]),
    ]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('share:3')?.['WhoId']).toBe(fake.taskByExternalId('share:1')?.['WhoId']);
  });

  it('escapes SOSL reserved characters', async () => {
    const { escapeSosl } = await import('./salesforce-lookups');
    expect(escapeSosl('+1 (555) "x" - a:b')).toBe('\\+1 \\(555\\) \\"x\\" \\- a\\:b');
  });
});

describe('SalesforceTarget lookup cache', () => {
  const whoBy = (phone: string) => ({ WhoId: { by: 'phone', value: phone } as const });

  it('looks a number up again once its positive TTL has passed', async () => {
    const clock = new ManualClock();
    const first = fake.addContact({ LastName: 'First', Phone: '555 700 1000' });
    const sf = target(clientCredentials({ LOOKUP_CACHE_TTL_SECONDS: '600' }), clock);
    ok((await sf.write([item(1, [task('ttl:1', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.taskByExternalId('ttl:1')?.['WhoId']).toBe(first);

    // A rep edits the CRM: the number now belongs to another contact.
    fake.update('Contact', first, { Phone: '555 700 9999' });
    const second = fake.addContact({ LastName: 'Second', Phone: '+1 555 700 1000' });
    fake.resetCounters();
    clock.advance(599_000);
    ok((await sf.write([item(2, [task('ttl:2', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0); // still fresh: the cached match is used
    expect(fake.taskByExternalId('ttl:2')?.['WhoId']).toBe(first);

    clock.advance(2_000);
    ok((await sf.write([item(3, [task('ttl:3', {}, whoBy('+15557001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('ttl:3')?.['WhoId']).toBe(second);
  });

  it('drops a cached Contact the org refuses (merged, deleted) and retries the call soon instead of failing it', async () => {
    const clock = new ManualClock();
    const gone = fake.addContact({ LastName: 'Merged away', Phone: '555 710 2000' });
    const sf = target(clientCredentials(), clock);
    ok((await sf.write([item(1, [task('stale:1', {}, whoBy('+15557102000'))])]))[0]);
    fake.remove('Contact', gone);

    const [refused] = await sf.write([item(2, [task('stale:2', {}, whoBy('+15557102000'))])]);
    const error = failed(refused).error;
    expect(error).toMatchObject({ kind: 'transient', retryable: true, crmCode: 'INVALID_CROSS_REFERENCE_KEY' });
    expect(error.retryAt?.getTime()).toBe(clock.now() + 5_000);
    expect(fake.taskByExternalId('stale:2')).toBeUndefined();

    fake.resetCounters();
    const retried = ok((await sf.write([item(2, [task('stale:2', {}, whoBy('+15557102000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1); // looked up afresh
    expect((retried.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);
    expect(fake.taskByExternalId('stale:2')).not.toHaveProperty('WhoId');
  });

  it('fails the call for good, with the org\'s message, when the org refuses a Contact looked up afresh in the same write', async () => {
    const clock = new ManualClock();
    const ghost = fake.addContact({ LastName: 'Deleted', Phone: '555 720 3000' });
    const sf = target(clientCredentials(), clock);
    ok((await sf.write([item(1, [task('ghost:1', {}, whoBy('+15557203000'))])]))[0]);
    // Deleted, but SOSL's index still finds it.
    fake.remove('Contact', ghost, { stillSearchable: true });

    // The cached id may just be stale: retried soon, looked up afresh.
    const [cached] = await sf.write([item(2, [task('ghost:2', {}, whoBy('+15557203000'))])]);
    expect(failed(cached).error).toMatchObject({ kind: 'transient', crmCode: 'INVALID_CROSS_REFERENCE_KEY', retryAt: new Date(clock.now() + 5_000) });

    // The fresh search answers the same id, which the org refuses again: no point retrying.
    clock.advance(5_000);
    fake.resetCounters();
    const [fresh] = await sf.write([item(2, [task('ghost:2', {}, whoBy('+15557203000'))])]);
    expect(fake.requests('sosl')).toBe(1);
    const { error } = failed(fresh);
    expect(error).toMatchObject({ kind: 'permanent', retryable: false, crmCode: 'INVALID_CROSS_REFERENCE_KEY', retryAt: undefined });
    expect(error.message).toBe(`INVALID_CROSS_REFERENCE_KEY: Name ID: id value of incorrect type: ${ghost} (WhoId)`);
    expect(fake.taskByExternalId('ghost:2')).toBeUndefined();
  });

  it('keeps failing an id the mapping gave (by: id): it is not a stale lookup', async () => {
    const [result] = await target().write([item(1, [task('given:1', {}, { WhoId: { by: 'id', value: '003000000000999AAA' } })])]);
    expect(failed(result).error).toMatchObject({ kind: 'permanent', crmCode: 'INVALID_CROSS_REFERENCE_KEY' });
  });

  it('does not search for a number that is not E.164; the call is written without WhoId', async () => {
    fake.addContact({ Phone: '555 123 4567' });
    const sf = target();
    const result = ok((await sf.write([item(1, [task('raw:1', {}, whoBy('555-123-4567'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0);
    expect((result.sent as unknown as SentPayload).records[0]?.unresolved).toEqual(['WhoId']);
    expect(fake.taskByExternalId('raw:1')).not.toHaveProperty('WhoId');
  });

  it('splits a phone search whose answer reached the SOSL row limit instead of caching "not found"', async () => {
    const clock = new ManualClock();
    // 2,000 look-alikes abroad fill a search's rows before the real match.
    for (let i = 0; i < 2_000; i += 1) fake.addContact({ LastName: `Abroad ${i}`, Phone: '+44 555 800 1000' });
    const real = fake.addContact({ LastName: 'Real', Phone: '(555) 800 2000' });
    const sf = target(clientCredentials(), clock);
    const results = await sf.write([item(1, [task('lim:1', {}, whoBy('+15558001000'))]), item(2, [task('lim:2', {}, whoBy('+15558002000'))])]);
    results.forEach((r) => ok(r));
    expect(fake.taskByExternalId('lim:2')?.['WhoId']).toBe(real);
    expect(fake.taskByExternalId('lim:1')).not.toHaveProperty('WhoId');
    expect(fake.requests('sosl')).toBe(3);

    // Alone in its search, the number still filled the rows: it would again,
    // so "unlinked" is kept like "not found" (a minute), then searched again.
    fake.resetCounters();
    ok((await sf.write([item(3, [task('lim:3', {}, whoBy('+15558001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(0);
    clock.advance(60_000);
    ok((await sf.write([item(4, [task('lim:4', {}, whoBy('+15558001000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.taskByExternalId('lim:4')).not.toHaveProperty('WhoId');
  });

  it('searches a shared switchboard number that fills SOSL\'s 2,000 rows at most once a minute, not on every write', async () => {
    const clock = new ManualClock();
    for (let i = 0; i < 2_001; i += 1) fake.addContact({ LastName: `Staff ${i}`, Phone: '(555) 800 9000' });
    const sf = target(clientCredentials({ LOOKUP_CACHE_TTL_SECONDS: '900' }), clock);
    for (let i = 0; i < 5; i += 1) {
      ok((await sf.write([item(i, [task(`sw:${i}`, {}, whoBy('+15558009000'))])]))[0]);
      clock.advance(10_000);
    }
    expect(fake.requests('sosl')).toBe(1);
    expect(fake.tasks().filter((t) => String(t['Call_Sync_Id__c']).startsWith('sw:') && t['WhoId'] === undefined)).toHaveLength(5);
    clock.advance(10_000); // a minute since the search
    ok((await sf.write([item(9, [task('sw:9', {}, whoBy('+15558009000'))])]))[0]);
    expect(fake.requests('sosl')).toBe(2);
  });
});
