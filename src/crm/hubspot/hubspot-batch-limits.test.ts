import { setupServer } from 'msw/node';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeHubSpot } from '../../../test/fakes/hubspot';
import { failed, ok, rejection } from '../../../test/support/crm-write';
import { WRITES, call, hubspotTargets, item } from '../../../test/support/hubspot-write';
import { ManualClock } from '../../../test/support/manual-clock';

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

describe('HubSpotTarget whole-batch refusals (no bisection storm)', () => {
  it('fails 100 new calls carrying a property the portal lacks in one create, with HubSpot\'s message', async () => {
    const hs = target();
    const results = await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nx:${i}`, { hs_call_mood: 'happy' })])));
    for (const result of results) {
      expect(failed(result).error).toMatchObject({ kind: 'mapping', retryable: false, crmCode: 'VALIDATION_ERROR', message: 'VALIDATION_ERROR: Property "hs_call_mood" does not exist' });
    }
    expect(fake.counters()).toEqual({ property: 1, create: 1 });
  });

  it('fails 100 known calls carrying a property the portal lacks in one upsert', async () => {
    const hs = target();
    const written = (await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nu:${i}`)])))).map((r) => ok(r));
    fake.resetCounters();
    const results = await hs.write(Array.from({ length: 100 }, (_, i) => item(i, [call(`nu:${i}`, { hs_call_mood: 'happy' })], written[i]?.ids)));
    for (const result of results) {
      expect(failed(result).error).toMatchObject({ kind: 'mapping', httpStatus: 400, crmCode: 'VALIDATION_ERROR' });
    }
    expect(fake.counters()).toEqual({ upsert: 1 });
  });

  it('isolates a known call with a bad value in one more upsert: HubSpot quotes the value', async () => {
    const hs = target();
    const written = (await hs.write(Array.from({ length: 20 }, (_, i) => item(i, [call(`bv:${i}`)])))).map((r) => ok(r));
    fake.resetCounters();
    const results = await hs.write(
      Array.from({ length: 20 }, (_, i) => item(i, [call(`bv:${i}`, i === 7 ? { hs_call_status: 'EXPLODED' } : { hs_call_body: 'wrap-up' })], written[i]?.ids)),
    );
    expect(failed(results[7]).error).toMatchObject({ kind: 'permanent', httpStatus: 400 });
    expect(failed(results[7]).error.message).toContain('EXPLODED was not one of the allowed options');
    results.forEach((r, i) => {
      if (i !== 7) ok(r);
    });
    expect(fake.counters()).toEqual({ upsert: 2 });
    expect(fake.records('calls').filter((c) => c.properties['hs_call_body'] === 'wrap-up')).toHaveLength(19);
  });

  it('writes 101 new calls as two creates of at most 100, one call each', async () => {
    const hs = target();
    const results = await hs.write(Array.from({ length: 101 }, (_, i) => item(i, [call(`ch:${i}`)])));
    results.forEach((r) => expect(ok(r).created).toBe(true));
    expect(fake.requests('create')).toBe(2);
    const calls = fake.records('calls');
    expect(calls).toHaveLength(101);
    expect(new Set(calls.map((c) => c.properties['call_sync_id'])).size).toBe(101);
  });
});

describe('HubSpotTarget rate limits and quota', () => {
  it('honours Retry-After on a 429: holds requests until then, then carries on', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    fake.failNext(1, { type: 'rate-limit', retryAfterSeconds: 30 }, WRITES);
    const limited = await rejection(hs.write([item(1, [call('r:1')])]));
    expect(limited).toMatchObject({ kind: 'transient', httpStatus: 429, crmCode: 'TEN_SECONDLY_ROLLING' });
    expect(limited.retryAt?.getTime()).toBe(clock.now() + 30_000);

    const before = fake.requests();
    expect(await rejection(hs.write([item(1, [call('r:1')])]))).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(fake.requests()).toBe(before);

    clock.advance(30_000);
    ok((await hs.write([item(1, [call('r:1')])]))[0]);
    expect(fake.records('calls')).toHaveLength(1);
  });

  it('waits the 10-second window out after a 429 without Retry-After', async () => {
    const clock = new ManualClock();
    const hs = target({}, clock);
    fake.failNext(1, { type: 'rate-limit' }, WRITES);
    expect((await rejection(hs.write([item(1, [call('r:2')])]))).retryAt?.getTime()).toBe(clock.now() + 10_000);
  });

  it('paces itself under the burst limit HubSpot announces instead of running into 429', async () => {
    const clock = new ManualClock();
    fake.tenSecondLimit = 5;
    const hs = target({}, clock);
    // The id property's definition, then three creates: four of the five.
    for (let i = 0; i < 3; i += 1) ok((await hs.write([item(i, [call(`b:${i}`)])]))[0]);
    const held = await rejection(hs.write([item(9, [call('b:9')])]));
    expect(held).toMatchObject({ kind: 'transient', crmCode: 'PACED' });
    expect(fake.requests()).toBe(4);
    clock.advance((held.retryAt?.getTime() ?? 0) - clock.now());
    ok((await hs.write([item(9, [call('b:9')])]))[0]);
    expect(fake.records('calls')).toHaveLength(4);
  });

  it('pauses on the daily limit (policyName DAILY): pausedUntil set, no calls until it passes', async () => {
    const clock = new ManualClock(Date.UTC(2025, 0, 15, 12, 20, 0));
    const hs = target({}, clock);
    fake.failNext(1, { type: 'quota' }, WRITES);
    const spent = await rejection(hs.write([item(1, [call('q:1')])]));
    expect(spent).toMatchObject({ kind: 'quota', retryable: true, httpStatus: 429, crmCode: 'DAILY' });
    const until = hs.pausedUntil();
    expect(until?.toISOString()).toBe('2025-01-15T13:00:00.000Z');
    expect(spent.retryAt).toEqual(until);

    const before = fake.requests();
    expect(await rejection(hs.write([item(2, [call('q:2')])]))).toMatchObject({ kind: 'quota', retryAt: until });
    expect(fake.requests()).toBe(before);
    expect(fake.records('calls')).toHaveLength(0);

    clock.advance(40 * 60_000);
    expect(hs.pausedUntil()).toBeUndefined();
    ok((await hs.write([item(1, [call('q:1')])]))[0]);
    expect(fake.records('calls')).toHaveLength(1);
  });

  it('pauses as soon as X-HubSpot-RateLimit-Daily-Remaining reaches 0', async () => {
    const hs = target({}, new ManualClock());
    fake.dailyLimit = 2;
    ok((await hs.write([item(1, [call('d:1')])]))[0]);
    expect(hs.pausedUntil()).toBeDefined();
    expect(await rejection(hs.write([item(2, [call('d:2')])]))).toMatchObject({ kind: 'quota' });
    expect(fake.requests()).toBe(2); // the id property's definition, then the create
  });
});
