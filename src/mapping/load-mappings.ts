import type { CountryCode } from 'libphonenumber-js';
import { SOURCES } from '../sources';
import type { CrmKind } from '../core/crm-record';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import { isPhoneRegion } from '../core/phone';
import { isValidZone } from '../core/time';
import { compileCondition } from './compile-condition';
import type { CompileEnv, CondFn, NamedConditions, Table } from './compile-env';
import { compileBaseRecord, compileCrmPlan, type BaseRecord, type CrmPlan } from './crm-records';
import { dedupeErrors, sortErrors, type MappingFileError } from './file-errors';
import type { TableInput } from './file-inputs';
import type { Scalar } from './language-terms';
import { LoadedMappings } from './loaded-mappings';
import { readMappingFiles } from './read-mapping-files';
import { compileSourcePlan, type SourcePlan } from './source-plan';

export interface LoadOptions {
  /** MAPPINGS_DIR */
  dir: string;
  /** DEFAULT_PHONE_REGION: region for numbers written without a country code. */
  defaultRegion: string;
  /**
   * Each source's zone for its zone-less vendor times (sourceTimeZones(config)):
   * what `zone: $<name>` means in that source's file, <name> being the
   * setting its adapter declares. UTC for a source left out.
   */
  timeZones: Partial<Record<SourceName, string>>;
}

/**
 * `fingerprint` identifies what was read (file names and contents), so a
 * watcher can tell a real edit from a change that left the files as they
 * were (an editor's swap file, a ConfigMap swap with the same content).
 */
export type LoadResult =
  | { ok: true; set: LoadedMappings; files: string[]; fingerprint: string }
  | { ok: false; errors: MappingFileError[]; fingerprint: string };

/**
 * Reads, validates and compiles every mapping file under `dir`:
 *   <source>.yaml       one per source (every source's is required)
 *   crm/<crm>.yaml      salesforce.yaml and hubspot.yaml
 *   tables/<name>.yaml  shared value tables, referenced as <name>.<table>
 * examples/ is not read here (the examples runner reads it): a broken
 * example must not stop the service. All problems are reported at once,
 * never a stack trace.
 */
export async function loadMappings(options: LoadOptions): Promise<LoadResult> {
  const dir = options.dir;
  const optionErrors = checkOptions(options);
  if (optionErrors.length > 0) return { ok: false, errors: optionErrors, fingerprint: 'options' };

  const read = await readMappingFiles(dir);
  if ('error' in read) return { ok: false, errors: [read.error], fingerprint: `dir: ${read.error.message}` };
  const { parsed, sources, crms, tableFiles, errors, fingerprint } = read;
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
      zones: zoneSettings(SOURCE_NAMES, options.timeZones),
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
      zones: zoneSettings([source], options.timeZones),
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

function checkOptions(options: LoadOptions): MappingFileError[] {
  const out: MappingFileError[] = [];
  if (!isPhoneRegion(options.defaultRegion)) {
    out.push({ file: 'DEFAULT_PHONE_REGION', line: 0, column: 0, message: `"${options.defaultRegion}" is not a phone region libphonenumber knows` });
  }
  for (const source of SOURCE_NAMES) {
    const zone = options.timeZones[source];
    const setting = SOURCES[source].timeZone;
    if (zone !== undefined && setting !== undefined && !isValidZone(zone)) {
      out.push({ file: setting.variable, line: 0, column: 0, message: `"${zone}" is not an IANA time zone` });
    }
  }
  return out;
}

/** The `zone: $<name>` settings of these sources (their adapters' timeZone), with the zone each names. */
function zoneSettings(sources: readonly SourceName[], timeZones: LoadOptions['timeZones']): Map<string, string> {
  const zones = new Map<string, string>();
  for (const source of sources) {
    const setting = SOURCES[source].timeZone;
    if (setting !== undefined) zones.set(setting.name, timeZones[source] ?? 'UTC');
  }
  return zones;
}
