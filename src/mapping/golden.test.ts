import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import { groupByCall, pathEventFromFileName, syntheticEvents } from '../intake/synthetic-events';
import { SCENARIOS, SHIPPED_DIR, expectHubSpotTimestamps, fixturePayloads, scenarioEvents } from '../../test/support/mappings';
import { fixturesDir, goldensDir } from '../../test/support/source-files';
import type { StoredEvent } from '../core/event';

/**
 * Golden examples: every fixture (every documented event type of every
 * source) and every multi-event scenario, through the shipped mappings, to
 * the exact canonical activity and the exact Salesforce and HubSpot records.
 * The expected outputs live in src/sources/<source>/goldens/ (scenarios in
 * its goldens/scenarios/) and were reviewed by hand; a mapping or code
 * change that alters any of them fails here.
 *
 * After an intended change: UPDATE_GOLDEN=1 npx vitest run src/mapping/golden.test.ts,
 * then review the diff of the goldens/ folders like code.
 */

const HCC_TZ = 'America/Chicago';
const update = process.env.UPDATE_GOLDEN === '1';

let set: LoadedMappings;
beforeAll(async () => {
  const loaded = await loadMappings({ dir: SHIPPED_DIR, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  set = loaded.set;
});

async function render(source: SourceName, events: StoredEvent[]): Promise<unknown> {
  const calls = [];
  for (const [callKey, list] of groupByCall(events)) {
    if (!list.some((e) => set.classify(source, e.eventType) === 'sync')) continue;
    const activity = await set.fold(source, callKey, list);
    const hubspot = await set.toCrm(activity, 'hubspot');
    expectHubSpotTimestamps(hubspot, `${source} ${callKey}`);
    calls.push({ activity, salesforce: await set.toCrm(activity, 'salesforce'), hubspot });
  }
  return {
    events: events.map((e) => ({ eventType: e.eventType, classify: set.classify(source, e.eventType) })),
    calls,
  };
}

/** `name`: the golden's path under src/sources/<source>/goldens/, without .json. */
async function matchGolden(source: SourceName, name: string, actual: unknown): Promise<void> {
  const file = path.join(goldensDir(source), `${name}.json`);
  const text = `${JSON.stringify(actual, null, 2)}\n`;
  if (update) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, text);
  }
  expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1 and review it`).toBe(true);
  expect(actual).toEqual(JSON.parse(await readFile(file, 'utf8')));
}

const fixtureFiles = await Promise.all(
  SOURCE_NAMES.map(async (source) => ({
    source,
    files: (await readdir(fixturesDir(source))).filter((f) => f.endsWith('.json')).sort(),
  })),
);

describe.each(fixtureFiles)('golden: $source fixtures', ({ source, files }) => {
  it.each(files)('%s', async (file) => {
    const payloads = await fixturePayloads(`${source}/${file}`);
    const type = pathEventFromFileName(source, file);
    const events = syntheticEvents(
      source,
      payloads.map((payload) => ({ payload, eventType: type })),
      { timeZones: { hcc: HCC_TZ } },
    );
    await matchGolden(source, file.replace(/\.json$/, ''), await render(source, events));
  });
});

describe('golden: multi-event calls', () => {
  it.each(Object.keys(SCENARIOS))('%s', async (name) => {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(name);
    const scenarioName = name.slice(name.indexOf('/') + 1);
    await matchGolden(scenario.source, `scenarios/${scenarioName}`, await render(scenario.source, await scenarioEvents(name, { hcc: HCC_TZ })));
  });
});

/** Every event type the seed documents name, and what intake does with it. */
const DOCUMENTED: Record<SourceName, Record<string, 'sync' | 'ignore' | 'drop'>> = {
  'genesys-ocs': { ContactProcessed: 'sync' },
  enreach: {
    UserAvailability: 'ignore',
    UserCallInArrived: 'sync',
    UserCallInComing: 'sync',
    UserCallInDisconnected: 'sync',
    UserCallInOverflow: 'sync',
    UserCallInTransferCancelled: 'sync',
    UserCallInTransferConnected: 'sync',
    UserCallInTransferStarted: 'sync',
    UserCallInUserAllocated: 'sync',
    UserCallInUserCancelled: 'sync',
    UserCallInUserConnected: 'sync',
    UserCallInUserOverflow: 'sync',
    UserCallOutConnected: 'sync',
    UserCallOutDisconnected: 'sync',
    UserCallOutGoing: 'sync',
    UserStatus: 'ignore',
    UserSupervisionStatus: 'ignore',
    UserWrapUpEnabled: 'ignore',
    UserWrapUpStarted: 'ignore',
    UserWrapUpTerminated: 'sync',
    QueueAttachedUsers: 'ignore',
    QueueCallInArrived: 'sync',
    QueueCallInComing: 'sync',
    QueueCallInDisconnected: 'sync',
    QueueCallInOverflow: 'sync',
    QueueCallInTransferCancelled: 'sync',
    QueueCallInTransferConnected: 'sync',
    QueueCallInTransferStarted: 'sync',
    QueueCallInUserAllocated: 'sync',
    QueueCallInUserCancelled: 'sync',
    QueueCallInUserConnected: 'sync',
    QueueStatus: 'drop',
    CallbackChanged: 'sync',
    CallbackListStatus: 'drop',
  },
  ucontact: {
    AgentRingNoAnswer: 'ignore',
    AgentLog: 'ignore',
    AgentBreak: 'ignore',
    FinishInteraction: 'sync',
    InteractionDisposition: 'sync',
  },
  hcc: { 'call-created': 'sync', 'call-ended': 'sync', 'call-saved': 'sync', 'regulation-f-declined': 'ignore' },
  'webex-cc': {
    'task:new': 'sync',
    'task:parked': 'sync',
    'task:connect': 'sync',
    'task:connected': 'sync',
    'task:ended': 'sync',
    'capture:available': 'sync',
    'agent:state_change': 'ignore',
  },
};

describe('classification of every documented event type', () => {
  it.each(SOURCE_NAMES)('%s', (source) => {
    const documented = DOCUMENTED[source];
    const got = Object.fromEntries(Object.keys(documented).map((t) => [t, set.classify(source, t)]));
    expect(got).toEqual(documented);
    // Every type the file names is a documented one: nothing invented, nothing missing.
    const named = set.eventTypes(source);
    expect([...named.sync, ...named.ignore, ...named.drop].sort()).toEqual(Object.keys(documented).sort());
  });

  it('applies each source’s declared default to unknown event types', () => {
    expect(SOURCE_NAMES.map((s) => set.classify(s, 'SomethingNew'))).toEqual(['ignore', 'ignore', 'ignore', 'ignore', 'ignore']);
  });
});
