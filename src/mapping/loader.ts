import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { CountryCode } from 'libphonenumber-js';
import { SOURCES } from '../sources';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import type { CompileEnv, CondFn, NamedConditions, Table } from './compile';
import { compileCondition } from './compile';
import { compileBaseRecord, compileCrmPlan, buildRecords, type BaseRecord, type CrmPlan } from './crm';
import type { MappingFileError } from './errors';
import { sortErrors } from './errors';
import { classifyWith, compileSourcePlan, foldEvents, type SourcePlan } from './fold';
import {
  CRM_KINDS,
  crmFileSchema,
  sourceFileSchema,
  tablesFileSchema,
  type CrmFileInput,
  type Scalar,
  type SourceFileInput,
  type TableInput,
  type TablesFileInput,
} from './schema';
import { isPhoneRegion } from '../core/phone';
import { isValidZone } from '../core/time';
import { type MappingSet } from './types';
import { MappingError } from '../core/errors';
import { type CrmKind, type CrmRecord } from '../core/crm-record';
import { type CallActivity } from '../core/activity';
import { type EventDisposition, type StoredEvent } from '../core/event';
import { YamlFile } from './yaml-file';

export interface LoadOptions {
  /** MAPPINGS_DIR */
  dir: string;
  /** DEFAULT_PHONE_REGION: region for numbers written without a country code. */
  defaultRegion: string;
  /** HCC_TIMEZONE: what `$hccTimezone` means in a mapping. */
  hccTimezone: string;
}

/**
 * `fingerprint` identifies what was read (file names and contents), so a
 * watcher can tell a real edit from a change that left the files as they
 * were (an editor's swap file, a ConfigMap swap with the same content).
 */
export type LoadResult =
  | { ok: true; set: LoadedMappings; files: string[]; fingerprint: string }
  | { ok: false; errors: MappingFileError[]; fingerprint: string };

const YAML_FILE = /\.ya?ml$/;

/**
 * Reads, validates and compiles every mapping file under `dir`:
 *   <source>.yaml       one per source (all five are required)
 *   crm/<crm>.yaml      salesforce.yaml and hubspot.yaml
 *   tables/<name>.yaml  shared value tables, referenced as <name>.<table>
 * examples/ is not read here (see examples.ts): a broken example must not
 * stop the service. All problems are reported at once, never a stack trace.
 */
export async function loadMappings(options: LoadOptions): Promise<LoadResult> {
  const dir = options.dir;
  const errors: MappingFileError[] = [];
  const optionErrors = checkOptions(options);
  if (optionErrors.length > 0) return { ok: false, errors: optionErrors, fingerprint: 'options' };

  const listing = await listMappingFiles(dir);
  if ('error' in listing) return { ok: false, errors: [listing.error], fingerprint: `dir: ${listing.error.message}` };

  const hash = createHash('sha256');
  for (const rel of listing.unknownFiles) hash.update(`unknown\0${rel}\0`);
  const parsed = new Map<string, YamlFile>();
  for (const rel of listing.files) {
    const file = path.join(dir, rel);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      hash.update(`unreadable\0${rel}\0${code}\0`);
      errors.push({ file, line: 0, column: 0, message: `could not be read (${code})` });
      continue;
    }
    hash.update(`${rel}\0${text.length}\0${text}\0`);
    const result = YamlFile.parse(file, rel, text);
    if (result.ok) parsed.set(rel, result.file);
    else errors.push(...result.errors);
  }

  const sources = new Map<SourceName, { yaml: YamlFile; input: SourceFileInput }>();
  const crms = new Map<CrmKind, { yaml: YamlFile; input: CrmFileInput }>();
  const tableFiles = new Map<string, { yaml: YamlFile; input: TablesFileInput }>();

  for (const [rel, yaml] of parsed) {
    const dirName = path.posix.dirname(rel);
    const base = path.posix.basename(rel).replace(YAML_FILE, '');
    if (dirName === 'tables') {
      const r = tablesFileSchema.safeParse(yaml.data ?? {});
      if (r.success) tableFiles.set(base, { yaml, input: r.data });
      else errors.push(...yaml.zodErrors(r.error.issues));
    } else if (dirName === 'crm') {
      const r = crmFileSchema.safeParse(yaml.data);
      if (!r.success) {
        errors.push(...yaml.zodErrors(r.error.issues));
      } else if (r.data.crm !== base) {
        errors.push(yaml.error(['crm'], `crm is "${r.data.crm}" but the file is named ${base}.yaml; name it ${r.data.crm}.yaml`));
      } else {
        crms.set(r.data.crm, { yaml, input: r.data });
      }
    } else {
      const r = sourceFileSchema.safeParse(yaml.data);
      if (!r.success) {
        errors.push(...yaml.zodErrors(r.error.issues));
      } else if (r.data.source !== base) {
        errors.push(yaml.error(['source'], `source is "${r.data.source}" but the file is named ${base}.yaml; name it ${r.data.source}.yaml`));
      } else if (!(SOURCE_NAMES as readonly string[]).includes(base)) {
        errors.push(yaml.error(['source'], `"${base}" is not a source; the sources are ${SOURCE_NAMES.join(', ')}`));
      } else {
        sources.set(base as SourceName, { yaml, input: r.data });
      }
    }
  }

  for (const rel of listing.unknownFiles) {
    errors.push({ file: path.join(dir, rel), line: 0, column: 0, message: unknownFileMessage(rel) });
  }
  if (errors.length === 0) {
    for (const s of SOURCE_NAMES) {
      if (!parsed.has(`${s}.yaml`) && !parsed.has(`${s}.yml`)) {
        errors.push({ file: path.join(dir, `${s}.yaml`), line: 0, column: 0, message: 'is missing: every source needs a mapping file' });
      }
    }
    for (const c of CRM_KINDS) {
      if (!crms.has(c)) errors.push({ file: path.join(dir, 'crm', `${c}.yaml`), line: 0, column: 0, message: 'is missing: every CRM needs a mapping file' });
    }
  }
  const fingerprint = hash.digest('hex');
  if (errors.length > 0) return { ok: false, errors: sortErrors(errors), fingerprint };

  // Shared tables: <file>.<table>
  const shared = new Map<string, Table>();
  for (const [group, { input }] of tableFiles) {
    for (const [name, table] of Object.entries(input)) shared.set(`${group}.${name}`, toTable(table));
  }
  const resolver = (local: Record<string, TableInput> | undefined) => {
    const own = new Map(Object.entries(local ?? {}).map(([k, t]) => [k, toTable(t)] as const));
    return {
      tables: (name: string) => (name.includes('.') ? shared.get(name) : own.get(name)),
      tableNames: () => [...own.keys(), ...shared.keys()],
    };
  };
  const defaultRegion = options.defaultRegion as CountryCode;

  const crmBases = new Map<CrmKind, { activity: BaseRecord; followup: BaseRecord }>();
  for (const [kind, { yaml, input }] of crms) {
    const env: CompileEnv = {
      yaml,
      scope: 'activity',
      errors,
      source: undefined,
      ...resolver(input.tables),
      conditions: null,
      syncedEvents: null,
      // A CRM file serves every source, so any custom.<name> may be read (it is empty where not defined).
      customNames: null,
      phoneRegion: defaultRegion,
      hccTimezone: options.hccTimezone,
      keptHeaders: null,
    };
    crmBases.set(kind, {
      activity: compileBaseRecord(input.activity, ['activity'], env),
      followup: compileBaseRecord(input.followup, ['followup'], env),
    });
  }

  const plans = new Map<SourceName, { plan: SourcePlan; crm: Map<CrmKind, CrmPlan> }>();
  for (const [source, { yaml, input }] of sources) {
    const named: NamedConditions = { inputs: input.conditions ?? {}, at: ['conditions'], compiled: new Map(), compiling: new Set() };
    const region = input.phoneRegion ?? defaultRegion;
    if (!isPhoneRegion(region)) errors.push(yaml.error(['phoneRegion'], `"${region}" is not a phone region libphonenumber knows`));
    const env: CompileEnv = {
      yaml,
      scope: 'event',
      errors,
      source,
      ...resolver(input.tables),
      conditions: named,
      syncedEvents: new Set(input.events.sync),
      customNames: null,
      phoneRegion: isPhoneRegion(region) ? region : defaultRegion,
      hccTimezone: options.hccTimezone,
      keptHeaders: new Set(SOURCES[source].keptHeaders),
    };
    const plan = compileSourcePlan(source, input, env, named);
    const activityEnv: CompileEnv = { ...env, scope: 'activity', syncedEvents: null, customNames: plan.customNames };
    const sourceWhen: CondFn | null = input.crm?.when ? compileCondition(input.crm.when, ['crm', 'when'], activityEnv) : null;
    const crm = new Map<CrmKind, CrmPlan>();
    for (const [kind, base] of crmBases) crm.set(kind, compileCrmPlan(kind, base, sourceWhen, input.crm?.[kind], activityEnv));
    plans.set(source, { plan, crm });
  }
  if (errors.length > 0) return { ok: false, errors: sortErrors(dedupeErrors(errors)), fingerprint };

  const files = [...parsed.values()].map((y) => y.file).sort();
  return { ok: true, set: new LoadedMappings(plans, files), files, fingerprint };
}

function toTable(input: TableInput): Table {
  return new Map<string, Scalar>(Object.entries(input));
}

function dedupeErrors(errors: MappingFileError[]): MappingFileError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.file}:${e.line}:${e.column}:${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function checkOptions(options: LoadOptions): MappingFileError[] {
  const out: MappingFileError[] = [];
  if (!isPhoneRegion(options.defaultRegion)) {
    out.push({ file: 'DEFAULT_PHONE_REGION', line: 0, column: 0, message: `"${options.defaultRegion}" is not a phone region libphonenumber knows` });
  }
  if (!isValidZone(options.hccTimezone)) {
    out.push({ file: 'HCC_TIMEZONE', line: 0, column: 0, message: `"${options.hccTimezone}" is not an IANA time zone` });
  }
  return out;
}

function unknownFileMessage(rel: string): string {
  const dir = path.posix.dirname(rel);
  if (dir === 'crm') return `is not a CRM mapping: the files here are ${CRM_KINDS.map((c) => `${c}.yaml`).join(' and ')}`;
  return `is not a source mapping: name it after a source (${SOURCE_NAMES.join(', ')})`;
}

/**
 * What an entry of the mappings dir is, following symlinks: a Kubernetes
 * ConfigMap mount is all symlinks (hcc.yaml -> ..data/hcc.yaml, crm ->
 * ..data/crm, ..data -> ..2026_01_31_12_00_00.1234), and so is a mappings
 * dir linked from a shared checkout. A dangling link reads as a file, so the
 * read reports it instead of the file silently counting as missing.
 */
async function entryKind(dir: string, entry: Dirent): Promise<'file' | 'dir' | 'other'> {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'dir';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    const target = await stat(path.join(dir, entry.name));
    return target.isFile() ? 'file' : target.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'file';
  }
}

/**
 * Names the loader never reads: dot files (ConfigMap internals such as
 * ..data and ..2026_…, editor lock files such as .#hcc.yaml).
 */
function isHidden(name: string): boolean {
  return name.startsWith('.');
}

async function sortedEntries(dir: string): Promise<Dirent[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => !isHidden(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The YAML files the loader reads, relative to dir, with forward slashes. */
async function listMappingFiles(dir: string): Promise<{ files: string[]; unknownFiles: string[] } | { error: MappingFileError }> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return { error: { file: dir, line: 0, column: 0, message: 'is not a directory (MAPPINGS_DIR)' } };
  } catch {
    return { error: { file: dir, line: 0, column: 0, message: 'does not exist (MAPPINGS_DIR)' } };
  }
  const files: string[] = [];
  const unknownFiles: string[] = [];
  for (const entry of await sortedEntries(dir)) {
    const kind = await entryKind(dir, entry);
    if (kind === 'file' && YAML_FILE.test(entry.name)) {
      const base = entry.name.replace(YAML_FILE, '');
      if ((SOURCE_NAMES as readonly string[]).includes(base)) files.push(entry.name);
      else unknownFiles.push(entry.name);
    } else if (kind === 'dir' && (entry.name === 'crm' || entry.name === 'tables')) {
      const sub = path.join(dir, entry.name);
      for (const child of await sortedEntries(sub)) {
        if (!YAML_FILE.test(child.name) || (await entryKind(sub, child)) !== 'file') continue;
        const rel = `${entry.name}/${child.name}`;
        if (entry.name === 'crm' && !(CRM_KINDS as readonly string[]).includes(child.name.replace(YAML_FILE, ''))) unknownFiles.push(rel);
        else files.push(rel);
      }
    }
  }
  return { files, unknownFiles };
}

/**
 * The loaded, compiled mappings. Immutable: a reload builds a new one, so a
 * fold in progress keeps the mappings it started with.
 */
export class LoadedMappings implements MappingSet {
  private readonly dispositions: ReadonlyMap<SourceName, SourcePlan>;

  constructor(
    private readonly plans: ReadonlyMap<SourceName, { plan: SourcePlan; crm: ReadonlyMap<CrmKind, CrmPlan> }>,
    readonly files: readonly string[],
  ) {
    this.dispositions = new Map([...plans].map(([s, p]) => [s, p.plan]));
  }

  /** O(1): one map lookup per webhook. */
  classify(source: SourceName, eventType: string): EventDisposition {
    const plan = this.dispositions.get(source);
    // Every source has a plan (the loader requires all five files); be safe anyway.
    return plan ? classifyWith(plan, eventType) : 'ignore';
  }

  fold(source: SourceName, callKey: string, events: StoredEvent[]): Promise<CallActivity> {
    return foldEvents(this.plan(source), callKey, events);
  }

  toCrm(activity: CallActivity, crm: CrmKind): Promise<CrmRecord[]> {
    const plan = this.plans.get(activity.source)?.crm.get(crm);
    if (!plan) return Promise.reject(new MappingError(`no ${crm} mapping for ${activity.source}`, { source: activity.source }));
    return buildRecords(plan, activity);
  }

  /** The compiled source plan (for the CLI and tests). */
  plan(source: SourceName): SourcePlan {
    const p = this.plans.get(source);
    if (!p) throw new MappingError(`no mapping for source ${source}`, { source });
    return p.plan;
  }

  /** Event types a source file names, by what intake does with them. */
  eventTypes(source: SourceName): { sync: string[]; ignore: string[]; drop: string[]; unknown: EventDisposition } {
    const plan = this.plan(source);
    const out = { sync: [] as string[], ignore: [] as string[], drop: [] as string[], unknown: plan.unknown };
    for (const [type, d] of plan.dispositions) out[d].push(type);
    return out;
  }
}
