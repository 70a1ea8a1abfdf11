import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CountryCode } from 'libphonenumber-js';
import { expect } from 'vitest';
import { compileValue } from '../../src/mapping/compile-value';
import { compileCondition } from '../../src/mapping/compile-condition';
import { type CompileEnv, type NamedConditions, type Table } from '../../src/mapping/compile-env';
import type { MappingFileError } from '../../src/mapping/file-errors';
import { conditionSchema, valueSchema } from '../../src/mapping/file-schemas';
import { type Scalar } from '../../src/mapping/language-terms';
import { isSourceName, type SourceName } from '../../src/core/event';
import { pathEventFromFileName, syntheticEvents, type SyntheticInput } from '../../src/intake/synthetic-events';
import { fixturePath } from './source-files';
import type { CrmRecord } from '../../src/core/crm-record';
import type { StoredEvent } from '../../src/core/event';
import { YamlFile } from '../../src/mapping/yaml-file';

/**
 * Helpers for the mapping tests: compile a single value or condition from a
 * YAML snippet, and copy the shipped mappings into a temporary dir to edit.
 */

export const SHIPPED_DIR = path.resolve(import.meta.dirname, '../../mappings');

export interface SnippetOptions {
  tables?: Record<string, Record<string, Scalar>>;
  conditions?: Record<string, unknown>;
  scope?: 'event' | 'activity';
  phoneRegion?: CountryCode;
  /** The `zone: $<name>` settings the snippet may name, with their zones (a source file gets its adapter's one). */
  zones?: Record<string, string>;
  keptHeaders?: ReadonlySet<string>;
}

function envFor(yaml: YamlFile, errors: MappingFileError[], options: SnippetOptions): CompileEnv {
  const tables = new Map<string, Table>(Object.entries(options.tables ?? {}).map(([k, t]) => [k, new Map(Object.entries(t))]));
  const named: NamedConditions = {
    inputs: (options.conditions ?? {}) as NamedConditions['inputs'],
    at: ['conditions'],
    compiled: new Map(),
    compiling: new Set(),
  };
  return {
    yaml,
    scope: options.scope ?? 'event',
    errors,
    source: 'test',
    tables: (name) => tables.get(name),
    tableNames: () => [...tables.keys()],
    conditions: named,
    syncedEvents: null,
    customNames: null,
    phoneRegion: options.phoneRegion ?? 'US',
    zones: new Map(Object.entries(options.zones ?? {})),
    keptHeaders: options.keptHeaders ?? null,
  };
}

export function testEvent(payload: Record<string, unknown>, overrides: Partial<StoredEvent> = {}): StoredEvent {
  return {
    id: 1,
    source: 'genesys-ocs',
    eventType: 'Test',
    dedupeKey: 'k1',
    callKey: 'c1',
    vendorTime: null,
    vendorTimeRaw: null,
    receivedAt: new Date('2024-01-01T00:00:00Z'),
    payload,
    headers: {},
    ...overrides,
  };
}

/** A value spec from YAML, compiled: evaluate(payload) or errors. */
export function compileValueSnippet(
  text: string,
  options: SnippetOptions = {},
): { errors: MappingFileError[]; evaluate: (root: Record<string, unknown>, event?: StoredEvent) => Promise<unknown> } {
  const parsed = YamlFile.parse('snippet.yaml', 'snippet.yaml', text);
  if (!parsed.ok) return { errors: parsed.errors, evaluate: () => Promise.reject(new Error('does not compile')) };
  const yaml = parsed.file;
  const checked = valueSchema.safeParse(yaml.data);
  if (!checked.success) return { errors: yaml.zodErrors(checked.error.issues), evaluate: () => Promise.reject(new Error('invalid')) };
  const errors: MappingFileError[] = [];
  const fn = compileValue(checked.data, [], envFor(yaml, errors, options));
  return {
    errors,
    evaluate: async (root, event) => fn({ root, event: event ?? (options.scope === 'activity' ? null : testEvent(root)) }),
  };
}

export function compileConditionSnippet(
  text: string,
  options: SnippetOptions = {},
): { errors: MappingFileError[]; test: (root: Record<string, unknown>, event?: StoredEvent) => Promise<boolean> } {
  const parsed = YamlFile.parse('snippet.yaml', 'snippet.yaml', text);
  if (!parsed.ok) return { errors: parsed.errors, test: () => Promise.reject(new Error('does not compile')) };
  const yaml = parsed.file;
  const checked = conditionSchema.safeParse(yaml.data);
  if (!checked.success) return { errors: yaml.zodErrors(checked.error.issues), test: () => Promise.reject(new Error('invalid')) };
  const errors: MappingFileError[] = [];
  const fn = compileCondition(checked.data, [], envFor(yaml, errors, options));
  return { errors, test: async (root, event) => fn({ root, event: event ?? testEvent(root) }) };
}

/** A temporary copy of the shipped mappings; `edit` rewrites one file in it. */
export async function copyMappings(): Promise<{
  dir: string;
  file: (rel: string) => string;
  read: (rel: string) => Promise<string>;
  write: (rel: string, text: string) => Promise<void>;
  edit: (rel: string, from: string, to: string) => Promise<void>;
  remove: () => Promise<void>;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callsync-mappings-'));
  await cp(SHIPPED_DIR, dir, { recursive: true });
  const file = (rel: string): string => path.join(dir, rel);
  return {
    dir,
    file,
    read: (rel) => readFile(file(rel), 'utf8'),
    write: (rel, text) => writeFile(file(rel), text),
    async edit(rel, from, to) {
      const text = await readFile(file(rel), 'utf8');
      if (!text.includes(from)) throw new Error(`${rel} does not contain ${JSON.stringify(from)}`);
      await writeFile(file(rel), text.replace(from, to));
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A fixture by '<source>/<file>', e.g. 'hcc/call-saved.json' (in src/sources/<source>/fixtures/). */
export async function readFixture(rel: string): Promise<unknown> {
  return JSON.parse(await readFile(fixtureFile(rel), 'utf8')) as unknown;
}

function fixtureFile(rel: string): string {
  const [source, ...rest] = rel.split('/');
  if (source === undefined || !isSourceName(source) || rest.length === 0) throw new Error(`${rel}: expected <source>/<fixture file>`);
  return fixturePath(source, rest.join('/'));
}

/**
 * Multi-event calls assembled from single-event fixtures (the fixture
 * sequences are used as they are). Golden and property tests share them.
 */
export const SCENARIOS: Record<string, { source: SourceName; fixtures: string[]; eventTypes?: string[]; receivedAt?: string[] }> = {
  'genesys-ocs/reschedule': { source: 'genesys-ocs', fixtures: ['genesys-ocs/sequence-reschedule.json'] },
  'genesys-ocs/callback-cancelled': { source: 'genesys-ocs', fixtures: ['genesys-ocs/sequence-callback-cancelled.json'] },
  'enreach/callback-closed': { source: 'enreach', fixtures: ['enreach/sequence-callback-closed.json'] },
  'enreach/queue-call': {
    source: 'enreach',
    fixtures: ['QueueCallInArrived', 'QueueCallInUserAllocated', 'QueueCallInUserConnected', 'QueueCallInDisconnected', 'UserWrapUpTerminated'].map((n) => `enreach/${n}.json`),
  },
  'enreach/direct-call-transferred': {
    source: 'enreach',
    fixtures: [
      'UserCallInComing',
      'UserCallInArrived',
      'UserCallInUserAllocated',
      'UserCallInUserConnected',
      'UserWrapUpEnabled',
      'UserCallInTransferStarted',
      'UserCallInTransferConnected',
      'UserSupervisionStatus',
      'UserCallInDisconnected',
      'UserWrapUpStarted',
    ].map((n) => `enreach/${n}.json`),
  },
  'enreach/direct-call-missed': {
    source: 'enreach',
    fixtures: ['UserCallInUserCancelled', 'UserCallInUserOverflow', 'UserCallInOverflow', 'UserCallInTransferCancelled'].map((n) => `enreach/${n}.json`),
  },
  'enreach/queue-call-overflowed': {
    source: 'enreach',
    fixtures: [
      'QueueCallInComing',
      'QueueCallInUserCancelled',
      'QueueCallInOverflow',
      'QueueCallInTransferStarted',
      'QueueCallInTransferCancelled',
      'QueueCallInTransferConnected',
    ].map((n) => `enreach/${n}.json`),
  },
  'enreach/outbound-call': {
    source: 'enreach',
    fixtures: ['UserCallOutGoing', 'UserCallOutConnected', 'UserCallOutDisconnected'].map((n) => `enreach/${n}.json`),
  },
  'ucontact/interaction': { source: 'ucontact', fixtures: ['ucontact/FinishInteraction.json', 'ucontact/InteractionDisposition.json'] },
  'hcc/call-lifecycle': {
    source: 'hcc',
    fixtures: ['hcc/call-created.json', 'hcc/call-ended.json', 'hcc/call-saved.json'],
    eventTypes: ['call-created', 'call-ended', 'call-saved'],
  },
  // The agent saves the wrap form with a callback, then saves it again as a Sale without one.
  'hcc/callback-cleared': {
    source: 'hcc',
    fixtures: ['hcc/call-saved-callback.json', 'hcc/call-saved-callback-cleared.json'],
    eventTypes: ['call-saved', 'call-saved'],
    receivedAt: ['2023-06-27T19:04:30.000Z', '2023-06-27T19:21:05.000Z'],
  },
  'webex-cc/courtesy-callback': { source: 'webex-cc', fixtures: ['webex-cc/sequence-courtesy-callback.json'] },
  'webex-cc/callback-rona': { source: 'webex-cc', fixtures: ['webex-cc/sequence-callback-rona.json'] },
};

/** The payloads of one fixture file: a body, or the events of a sequence. */
export async function fixturePayloads(rel: string): Promise<Record<string, unknown>[]> {
  const doc = (await readFixture(rel)) as Record<string, unknown>;
  return Array.isArray(doc.events) ? (doc.events as Record<string, unknown>[]) : [doc];
}

/** StoredEvents for a scenario, in the order the fixtures list them. */
export async function scenarioEvents(name: string, timeZones: Partial<Record<SourceName, string>> = { hcc: 'America/Chicago' }): Promise<StoredEvent[]> {
  const s = SCENARIOS[name];
  if (!s) throw new Error(`no scenario ${name}`);
  const inputs: SyntheticInput[] = [];
  for (const [i, rel] of s.fixtures.entries()) {
    const type = s.eventTypes?.[i] ?? pathEventFromFileName(s.source, rel);
    const at = s.receivedAt?.[i];
    const receivedAt = at === undefined ? undefined : new Date(at);
    for (const payload of await fixturePayloads(rel)) inputs.push({ payload, eventType: type, receivedAt });
  }
  return syntheticEvents(s.source, inputs, { timeZones });
}

/**
 * HubSpot refuses to create a call or task without hs_timestamp, so every
 * record of every golden must carry one, whatever subset of the call's
 * events has arrived (each single-event fixture is such a subset).
 */
export function expectHubSpotTimestamps(records: readonly CrmRecord[], what: string): void {
  for (const r of records) {
    if (r.object !== 'calls' && r.object !== 'tasks') continue;
    expect(typeof r.fields.hs_timestamp === 'string' && r.fields.hs_timestamp !== '', `${what}: HubSpot ${r.object} ${r.externalId} has no hs_timestamp`).toBe(true);
  }
}
