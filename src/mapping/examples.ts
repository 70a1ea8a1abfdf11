import { readdir, readFile } from 'node:fs/promises';
import { isDeepStrictEqual } from 'node:util';
import path from 'node:path';
import { z } from 'zod';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import type { MappingFileError } from './file-errors';
import { sortErrors } from './file-errors';
import { loadMappings } from './load-mappings';
import { type LoadedMappings } from './loaded-mappings';
import type { JsonInput } from './language-terms';
import { groupByCall, syntheticEvents } from '../intake/synthetic-events';
import { SOURCES } from '../sources';
import { CRM_KINDS, type CrmKind, type CrmRecord } from '../core/crm-record';
import type { CallActivity } from '../core/activity';
import { YamlFile } from './yaml-file';

/**
 * Example cases kept beside the mappings (mappings/examples/<source>.yaml):
 * vendor payloads in, the activity and CRM fields expected out. `npm run
 * mappings -- test` and `npm test` run them, so an edit that changes what
 * reaches the CRM shows up as a failing example.
 *
 * Expectations are partial on purpose: list the activity fields and CRM
 * fields the example is about; the ones not listed are not compared. A field
 * listed as null must be empty (absent from the CRM record). The list of
 * records is compared in full: two expected records means exactly two.
 */

type Json = JsonInput;
const json: z.ZodType<Json> = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(json), z.record(z.string(), json)]));

const recordExpectation = z.strictObject({
  kind: z.enum(['activity', 'followup']),
  object: z.string().optional(),
  externalId: z.string().optional(),
  fields: z.record(z.string(), json).optional(),
  createOnly: z.array(z.string()).optional(),
  lookups: z.record(z.string(), json).optional(),
});
type RecordExpectation = z.infer<typeof recordExpectation>;

const exampleSchema = z.strictObject({
  name: z.string().min(1),
  events: z
    .array(
      z.strictObject({
        /** The event type when the body does not name it (HCC: the URL event). */
        type: z.string().optional(),
        headers: z.record(z.string(), z.string()).optional(),
        payload: z.record(z.string(), json),
      }),
    )
    .min(1, 'an example needs at least one event'),
  expect: z.strictObject({
    activity: z.record(z.string(), json).optional(),
    salesforce: z.array(recordExpectation).optional(),
    hubspot: z.array(recordExpectation).optional(),
  }),
});

/** The zone settings an examples file may set: each zone-less source's setting name (hccTimezone...), from its adapter. */
const ZONE_SETTINGS: ReadonlyMap<string, SourceName> = new Map(
  SOURCE_NAMES.flatMap((source) => {
    const setting = SOURCES[source].timeZone;
    return setting === undefined ? [] : [[setting.name, source] as const];
  }),
);

const settingsSchema = z.strictObject({
  defaultRegion: z.string().regex(/^[A-Z]{2}$/, 'must be a two-letter region such as US').optional(),
  ...Object.fromEntries([...ZONE_SETTINGS.keys()].map((name) => [name, z.string().min(1).optional()])),
});

const examplesFileSchema = z.strictObject({
  source: z.enum(SOURCE_NAMES),
  /** The settings the examples assume, so they pass whatever the environment says. */
  settings: settingsSchema.optional(),
  examples: z.array(exampleSchema).min(1, 'list at least one example'),
});

/** What examples run with unless their file says otherwise. */
export const EXAMPLE_DEFAULTS = { defaultRegion: 'US', timeZone: 'UTC' } as const;

export interface ExampleCase {
  source: SourceName;
  /** The phone region, and each zone-less source's zone (from the file's settings, else UTC). */
  settings: { defaultRegion: string; timeZones: Partial<Record<SourceName, string>> };
  name: string;
  /** file:line of the example, for reports. */
  where: string;
  events: { type?: string | undefined; headers?: Record<string, string> | undefined; payload: Record<string, unknown> }[];
  expect: z.infer<typeof exampleSchema>['expect'];
}

export async function loadExamples(dir: string): Promise<{ ok: true; cases: ExampleCase[]; files: string[] } | { ok: false; errors: MappingFileError[] }> {
  const exDir = path.join(dir, 'examples');
  let names: string[];
  try {
    names = (await readdir(exDir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch {
    return { ok: true, cases: [], files: [] };
  }
  const errors: MappingFileError[] = [];
  const cases: ExampleCase[] = [];
  const files: string[] = [];
  for (const name of names) {
    const file = path.join(exDir, name);
    const parsed = YamlFile.parse(file, `examples/${name}`, await readFile(file, 'utf8'));
    if (!parsed.ok) {
      errors.push(...parsed.errors);
      continue;
    }
    const yaml = parsed.file;
    const r = examplesFileSchema.safeParse(yaml.data);
    if (!r.success) {
      errors.push(...yaml.zodErrors(r.error.issues));
      continue;
    }
    files.push(file);
    r.data.examples.forEach((ex, i) => {
      const at = yaml.error(['examples', i, 'name'], '');
      const timeZones: Partial<Record<SourceName, string>> = {};
      // The zone keys are the adapters' setting names: known only at run time, validated by the schema above.
      const fileSettings: Record<string, string | undefined> = r.data.settings ?? {};
      for (const [setting, source] of ZONE_SETTINGS) timeZones[source] = fileSettings[setting] ?? EXAMPLE_DEFAULTS.timeZone;
      const settings = { defaultRegion: r.data.settings?.defaultRegion ?? EXAMPLE_DEFAULTS.defaultRegion, timeZones };
      cases.push({ source: r.data.source, settings, name: ex.name, where: `${at.file}:${at.line}`, events: ex.events, expect: ex.expect });
    });
  }
  return errors.length > 0 ? { ok: false, errors: sortErrors(errors) } : { ok: true, cases, files };
}

export interface ExampleResult {
  example: ExampleCase;
  failures: string[];
  activity: CallActivity | null;
  records: Partial<Record<CrmKind, CrmRecord[]>>;
}

/**
 * Loads the mappings once per distinct settings and runs every example.
 * Answers mapping errors instead when the mappings themselves do not load.
 */
export async function runExamples(
  dir: string,
  cases: readonly ExampleCase[],
): Promise<{ ok: true; results: ExampleResult[] } | { ok: false; errors: MappingFileError[] }> {
  const sets = new Map<string, LoadedMappings>();
  const results: ExampleResult[] = [];
  for (const example of cases) {
    const key = JSON.stringify(example.settings);
    let set = sets.get(key);
    if (!set) {
      const loaded = await loadMappings({ dir, defaultRegion: example.settings.defaultRegion, timeZones: example.settings.timeZones });
      if (!loaded.ok) return loaded;
      set = loaded.set;
      sets.set(key, set);
    }
    results.push(await runExample(set, example));
  }
  return { ok: true, results };
}

/** Runs one example: folds its events (all one call) and compares. Never throws. */
export async function runExample(set: LoadedMappings, example: ExampleCase): Promise<ExampleResult> {
  const failures: string[] = [];
  const records: Partial<Record<CrmKind, CrmRecord[]>> = {};
  let activity: CallActivity | null = null;
  try {
    const events = syntheticEvents(
      example.source,
      example.events.map((e) => ({ payload: e.payload, eventType: e.type, headers: e.headers })),
      { timeZones: example.settings.timeZones },
    );
    const calls = groupByCall(events);
    if (calls.size !== 1) failures.push(`the events belong to ${calls.size} calls (${[...calls.keys()].join(', ')}); an example is one call`);
    const [callKey, callEvents] = [...calls][0] ?? ['', []];
    activity = await set.fold(example.source, callKey, callEvents);
    for (const [key, want] of Object.entries(example.expect.activity ?? {})) {
      if (!(key in activity)) {
        failures.push(`activity.${key}: not an activity field`);
        continue;
      }
      const got = (activity as unknown as Record<string, unknown>)[key];
      if (!isDeepStrictEqual(got, want)) failures.push(`activity.${key}: expected ${show(want)}, got ${show(got)}`);
    }
    for (const crm of CRM_KINDS) {
      const expected = example.expect[crm];
      const got = await set.toCrm(activity, crm);
      records[crm] = got;
      if (expected) compareRecords(crm, expected, got, failures);
    }
  } catch (err) {
    failures.push(`failed: ${(err as Error).message}`);
  }
  return { example, failures, activity, records };
}

function compareRecords(crm: CrmKind, expected: RecordExpectation[], got: CrmRecord[], failures: string[]): void {
  if (expected.length !== got.length) {
    failures.push(`${crm}: expected ${expected.length} record(s) (${expected.map((e) => e.kind).join(', ') || 'none'}), got ${got.length} (${got.map((g) => g.kind).join(', ') || 'none'})`);
    return;
  }
  expected.forEach((want, i) => {
    const rec = got[i];
    if (!rec) return;
    const at = `${crm}[${i}]`;
    if (want.kind !== rec.kind) failures.push(`${at}.kind: expected ${want.kind}, got ${rec.kind}`);
    if (want.object !== undefined && want.object !== rec.object) failures.push(`${at}.object: expected ${want.object}, got ${rec.object}`);
    if (want.externalId !== undefined && want.externalId !== rec.externalId) failures.push(`${at}.externalId: expected ${want.externalId}, got ${rec.externalId}`);
    if (want.createOnly !== undefined && !isDeepStrictEqual(want.createOnly, rec.createOnly)) {
      failures.push(`${at}.createOnly: expected ${show(want.createOnly)}, got ${show(rec.createOnly)}`);
    }
    for (const [name, value] of Object.entries(want.fields ?? {})) {
      const actual = rec.fields[name] ?? null;
      if (!isDeepStrictEqual(actual, value)) failures.push(`${at}.fields.${name}: expected ${show(value)}, got ${show(actual)}`);
    }
    for (const [name, value] of Object.entries(want.lookups ?? {})) {
      const actual = rec.lookups[name] ?? null;
      if (!isDeepStrictEqual(actual, value)) failures.push(`${at}.lookups.${name}: expected ${show(value)}, got ${show(actual)}`);
    }
  });
}

function show(v: unknown): string {
  return v === undefined ? 'nothing' : JSON.stringify(v);
}
