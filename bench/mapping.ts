/**
 * Micro-benchmark of the mapping layer: fold + toCrm (Salesforce and
 * HubSpot) per call, over the fixtures' calls, on one core.
 *
 *   npm run bench:mapping [-- --seconds 5]
 *
 * The target: the worker folds and maps at least 1000 calls/s (about 5
 * events each) on 2 cores alongside Postgres.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadMappings } from '../src/mapping';
import { SOURCE_NAMES, type SourceName, type StoredEvent } from '../src/core/event';
import { groupByCall, pathEventFromFileName, syntheticEvents } from '../src/intake/synthetic-events';
import { fixturePath, fixturesDir } from '../test/support/source-files';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' } } });
const seconds = Number(values.seconds);
const root = path.resolve(import.meta.dirname, '..');

const loaded = await loadMappings({ dir: path.join(root, 'mappings'), defaultRegion: 'US', timeZones: { hcc: 'America/Chicago' } });
if (!loaded.ok) {
  process.stderr.write(`mappings do not load:\n${JSON.stringify(loaded.errors, null, 2)}\n`);
  process.exit(1);
}
const set = loaded.set;

/** Every fixture of a source as events, grouped into calls (the fixtures of one call share its key). */
const calls: { source: SourceName; callKey: string; events: StoredEvent[] }[] = [];
for (const source of SOURCE_NAMES) {
  const inputs = [];
  for (const file of (await readdir(fixturesDir(source))).filter((f) => f.endsWith('.json')).sort()) {
    const doc = JSON.parse(await readFile(fixturePath(source, file), 'utf8')) as Record<string, unknown>;
    const bodies = Array.isArray(doc.events) ? (doc.events as Record<string, unknown>[]) : [doc];
    const eventType = pathEventFromFileName(source, file);
    for (const payload of bodies) inputs.push({ payload, eventType });
  }
  const events = syntheticEvents(source, inputs, { timeZones: { hcc: 'America/Chicago' } });
  for (const [callKey, list] of groupByCall(events)) {
    const synced = list.filter((e) => set.classify(source, e.eventType) === 'sync');
    if (synced.length > 0) calls.push({ source, callKey, events: list });
  }
}
const eventsPerCall = calls.reduce((n, c) => n + c.events.length, 0) / calls.length;

async function once(c: (typeof calls)[number]): Promise<void> {
  const activity = await set.fold(c.source, c.callKey, c.events);
  await set.toCrm(activity, 'salesforce');
  await set.toCrm(activity, 'hubspot');
}

// Warm up (JIT), then measure.
for (let i = 0; i < 2000; i++) await once(calls[i % calls.length] as (typeof calls)[number]);
let done = 0;
const start = process.hrtime.bigint();
const until = start + BigInt(Math.round(seconds * 1e9));
while (process.hrtime.bigint() < until) {
  for (const c of calls) await once(c);
  done += calls.length;
}
const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
const rate = done / elapsed;
process.stdout.write(
  `mapping: ${Math.round(rate).toLocaleString('en-US')} calls/s on one core ` +
    `(fold + Salesforce + HubSpot records; ${calls.length} distinct calls, ${eventsPerCall.toFixed(1)} events/call on average, ` +
    `${Math.round((rate * eventsPerCall)).toLocaleString('en-US')} events/s; ${(1e6 / rate).toFixed(0)} µs/call)\n`,
);
