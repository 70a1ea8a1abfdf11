import { beforeAll, describe, expect, it } from 'vitest';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { SCENARIOS, SHIPPED_DIR, expectHubSpotTimestamps, scenarioEvents } from '../../test/support/mappings';
import type { StoredEvent } from '../core/event';

/**
 * The fold is order-independent and idempotent: the same set of events gives
 * the same activity (and the same CRM records) whatever order they arrive in
 * and however often each is delivered. Checked on every multi-event scenario
 * with many seeded shuffles, repeats and re-deliveries (a copy of an event
 * stored again under a new id, as a vendor retry would be if it slipped past
 * intake's dedupe).
 */

let set: LoadedMappings;
beforeAll(async () => {
  const loaded = await loadMappings({ dir: SHIPPED_DIR, defaultRegion: 'US', timeZones: { hcc: 'America/Chicago' } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  set = loaded.set;
});

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

/** Shuffled, with some events repeated and some re-delivered under a higher id. */
function scramble(events: StoredEvent[], random: () => number): StoredEvent[] {
  let nextId = 10_000;
  const extra: StoredEvent[] = [];
  for (const e of events) {
    const r = random();
    if (r < 0.25) extra.push(e);
    else if (r < 0.45) extra.push({ ...e, id: nextId++, receivedAt: new Date(e.receivedAt.getTime() + 60_000) });
    else if (r < 0.5) extra.push(e, e);
  }
  return shuffle([...events, ...extra], random);
}

const RUNS = 40;

describe('fold is order-independent and idempotent', () => {
  it.each(Object.keys(SCENARIOS))('%s', async (name) => {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(name);
    const events = await scenarioEvents(name);
    const callKey = events.find((e) => set.classify(scenario.source, e.eventType) === 'sync')?.callKey ?? '';
    const expected = await set.fold(scenario.source, callKey, events);
    const expectedSf = await set.toCrm(expected, 'salesforce');
    const expectedHs = await set.toCrm(expected, 'hubspot');
    expect(expected.eventIds.length).toBeGreaterThan(0);

    // Everything twice is the same as everything once.
    expect(await set.fold(scenario.source, callKey, [...events, ...events])).toEqual(expected);
    // Reversed.
    expect(await set.fold(scenario.source, callKey, [...events].reverse())).toEqual(expected);

    const random = rng(name.length * 7919 + 17);
    for (let run = 0; run < RUNS; run++) {
      const scrambled = scramble(events, random);
      const activity = await set.fold(scenario.source, callKey, scrambled);
      expect(activity, `${name}, run ${run}: ${scrambled.map((e) => e.id).join(',')}`).toEqual(expected);
      expect(await set.toCrm(activity, 'salesforce')).toEqual(expectedSf);
      expect(await set.toCrm(activity, 'hubspot')).toEqual(expectedHs);
    }
  });
});

/**
 * Whatever part of a call has arrived, and in whatever order, the HubSpot
 * call (and task) can be created: hs_timestamp is never missing. Every
 * prefix of a few seeded arrival orders of every scenario is folded.
 */
describe('every partial call has a HubSpot hs_timestamp', () => {
  it.each(Object.keys(SCENARIOS))('%s', async (name) => {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(name);
    const events = await scenarioEvents(name);
    const random = rng(name.length * 104_729 + 3);
    let checked = 0;
    for (let run = 0; run < 4; run++) {
      const arrival = run === 0 ? [...events].reverse() : shuffle(events, random);
      for (let n = 1; n <= arrival.length; n++) {
        const prefix = arrival.slice(0, n);
        const callKey = prefix[0]?.callKey ?? '';
        const activity = await set.fold(scenario.source, callKey, prefix);
        const records = await set.toCrm(activity, 'hubspot');
        expectHubSpotTimestamps(records, `${name}, order ${run}, first ${n}: ${prefix.map((e) => e.eventType).join(',')}`);
        checked += records.length;
      }
    }
    expect(checked).toBeGreaterThan(0);
  });
});
