import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeSalesforce } from '../../../test/fakes/salesforce';
import { ok, rejection } from '../../../test/support/crm-write';
import { item, salesforceTargets, task } from '../../../test/support/salesforce-write';
import { ManualClock } from '../../../test/support/manual-clock';

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

describe('SalesforceTarget pacing and quota', () => {
  it('honours Retry-After on a 429: no request until then, then carries on', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 30 }, 'upsert');
    const limited = await rejection(sf.write([item(1, [task('p:1')])]));
    expect(limited).toMatchObject({ kind: 'transient', httpStatus: 429 });
    expect(limited.retryAt?.getTime()).toBe(clock.now() + 30_000);

    const upserts = fake.requests('upsert');
    const held = await rejection(sf.write([item(1, [task('p:1')])]));
    expect(held).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(held.retryAt?.getTime()).toBe(clock.now() + 30_000);
    expect(fake.requests('upsert')).toBe(upserts);

    clock.advance(30_000);
    ok((await sf.write([item(1, [task('p:1')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('waits out a short Retry-After inside the next write', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 2 }, 'upsert');
    const start = clock.now();
    expect(await rejection(sf.write([item(1, [task('p:2')])]))).toMatchObject({ httpStatus: 429 });
    ok((await sf.write([item(1, [task('p:2')])]))[0]);
    expect(clock.now() - start).toBeGreaterThanOrEqual(2_000);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('pauses on the daily quota: pausedUntil set, no calls until it passes', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.failNext(1, { type: 'quota' }, 'upsert');
    const spent = await rejection(sf.write([item(1, [task('q:1')])]));
    expect(spent).toMatchObject({ kind: 'quota', retryable: true, httpStatus: 403, crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    const until = sf.pausedUntil();
    expect(until?.getTime()).toBe(clock.now() + 3_600_000);
    expect(spent.retryAt).toEqual(until);

    const requests = fake.requests();
    const refused = await rejection(sf.write([item(2, [task('q:2')])]));
    expect(refused).toMatchObject({ kind: 'quota', retryAt: until });
    expect(fake.requests()).toBe(requests);
    expect(fake.tasks()).toHaveLength(0);

    clock.advance(3_600_000);
    expect(sf.pausedUntil()).toBeUndefined();
    ok((await sf.write([item(1, [task('q:1')])]))[0]);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('pauses before the org refuses when Sforce-Limit-Info says the day is spent', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.setApiUsage(4_999, 5_000);
    ok((await sf.write([item(1, [task('q:3')])]))[0]); // this request is the 5,000th
    expect(sf.pausedUntil()).toBeDefined();
    expect(await rejection(sf.write([item(2, [task('q:4')])]))).toMatchObject({ kind: 'quota' });
    expect(fake.tasks()).toHaveLength(1);
  });

  it('spreads requests out when most of the daily budget is used', async () => {
    const clock = new ManualClock();
    const sf = target(clientCredentials(), clock);
    fake.setApiUsage(4_800, 5_000); // 96 % used: the last 200 must last the day
    ok((await sf.write([item(1, [task('q:5')])]))[0]);
    const spaced = await rejection(sf.write([item(2, [task('q:6')])]));
    expect(spaced).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect((spaced.retryAt?.getTime() ?? 0) - clock.now()).toBeGreaterThan(5_000);
    expect(fake.tasks()).toHaveLength(1);
  });

  it('treats the concurrent-request limit as transient, not as the daily quota', async () => {
    const sf = target();
    fake.failNext(1, { type: 'concurrent-limit' }, 'upsert');
    expect(await rejection(sf.write([item(1, [task('c:1')])]))).toMatchObject({ kind: 'transient', crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    expect(sf.pausedUntil()).toBeUndefined();
  });
});
