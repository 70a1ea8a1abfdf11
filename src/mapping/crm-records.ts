import { compileValue } from './compile-value';
import { compileCondition } from './compile-condition';
import { type CompileEnv, type CondFn, type Scope, type ValueFn } from './compile-env';
import type { CrmOverridesInput, LookupInput, RecordOverrideInput, RecordSpecInput, ValueInput } from './file-inputs';
import { toEmail, toText } from './transforms';
import { isE164 } from '../core/phone';
import { MappingError } from '../core/errors';
import { type CrmFieldValue, type CrmKind, type CrmRecord, type LookupRequest } from '../core/crm-record';
import { type CallActivity } from '../core/activity';
import type { YamlPath } from './yaml-file';

/**
 * The CRM side: each CRM file (mappings/crm/<crm>.yaml) says how the
 * canonical activity becomes that CRM's records; a source file may add,
 * replace or remove fields and lookups for its own calls. Both are merged
 * and compiled per source at load.
 */

interface CompiledLookup {
  by: LookupInput['by'];
  object: string | undefined;
  field: string | undefined;
  value: ValueFn;
}

interface Located<T> {
  value: T;
  file: string;
  line: number;
}

export interface RecordPlan {
  kind: 'activity' | 'followup';
  object: string;
  when: CondFn[];
  fields: [string, Located<ValueFn>][];
  createOnly: string[];
  lookups: [string, Located<CompiledLookup>][];
}

export interface CrmPlan {
  crm: CrmKind;
  when: CondFn[];
  activity: RecordPlan;
  followup: RecordPlan;
}

/** A CRM file's record, compiled once and shared by every source. */
export interface BaseRecord {
  spec: RecordSpecInput;
  at: YamlPath;
  when: CondFn | null;
  fields: Map<string, Located<ValueFn>>;
  lookups: Map<string, Located<CompiledLookup>>;
}

export function compileBaseRecord(spec: RecordSpecInput, at: YamlPath, env: CompileEnv): BaseRecord {
  const fields = new Map<string, Located<ValueFn>>();
  for (const [name, value] of Object.entries(spec.fields)) fields.set(name, located(value, [...at, 'fields', name], env));
  const lookups = new Map<string, Located<CompiledLookup>>();
  for (const [name, lookup] of Object.entries(spec.lookups ?? {})) {
    lookups.set(name, compileLookup(lookup, [...at, 'lookups', name], env));
  }
  (spec.createOnly ?? []).forEach((name, i) => {
    if (!fields.has(name)) env.errors.push(env.yaml.error([...at, 'createOnly', i], `createOnly names "${name}", which is not in fields`));
  });
  return { spec, at, when: spec.when ? compileCondition(spec.when, [...at, 'when'], env) : null, fields, lookups };
}

function located(value: ValueInput, at: YamlPath, env: CompileEnv): Located<ValueFn> {
  const where = env.yaml.error(at, '');
  return { value: compileValue(value, at, env), file: where.file, line: where.line };
}

function compileLookup(lookup: LookupInput, at: YamlPath, env: CompileEnv): Located<CompiledLookup> {
  const where = env.yaml.error(at, '');
  return {
    value: { by: lookup.by, object: lookup.object, field: lookup.field, value: compileValue(lookup.value, [...at, 'value'], env) },
    file: where.file,
    line: where.line,
  };
}

/** A CRM file's record with one source's overrides applied. */
export function mergeRecord(
  kind: 'activity' | 'followup',
  base: BaseRecord,
  override: RecordOverrideInput | undefined,
  at: YamlPath,
  env: CompileEnv,
): RecordPlan {
  const fields = new Map(base.fields);
  const lookups = new Map(base.lookups);
  const createOnly = new Set(base.spec.createOnly ?? []);
  const when: CondFn[] = base.when ? [base.when] : [];
  if (override) {
    if (override.when) when.push(compileCondition(override.when, [...at, 'when'], env));
    for (const [name, value] of Object.entries(override.fields ?? {})) {
      // `Field: null` in a source file removes a field the CRM file writes.
      if (value === null) {
        fields.delete(name);
        createOnly.delete(name);
      } else fields.set(name, located(value, [...at, 'fields', name], env));
    }
    for (const [name, lookup] of Object.entries(override.lookups ?? {})) {
      if (lookup === null) lookups.delete(name);
      else lookups.set(name, compileLookup(lookup, [...at, 'lookups', name], env));
    }
    (override.createOnly ?? []).forEach((name, i) => {
      if (!fields.has(name)) env.errors.push(env.yaml.error([...at, 'createOnly', i], `createOnly names "${name}", which is not in fields`));
      createOnly.add(name);
    });
  }
  return {
    kind,
    object: base.spec.object,
    when,
    fields: [...fields.entries()],
    createOnly: [...createOnly].filter((f) => fields.has(f)),
    lookups: [...lookups.entries()],
  };
}

export function compileCrmPlan(
  crm: CrmKind,
  base: { activity: BaseRecord; followup: BaseRecord },
  sourceWhen: CondFn | null,
  overrides: CrmOverridesInput | undefined,
  env: CompileEnv,
): CrmPlan {
  return {
    crm,
    when: sourceWhen ? [sourceWhen] : [],
    activity: mergeRecord('activity', base.activity, overrides?.activity, ['crm', crm, 'activity'], env),
    followup: mergeRecord('followup', base.followup, overrides?.followup, ['crm', crm, 'followup'], env),
  };
}

// ---------------------------------------------------------------------------
// Build records

async function holds(conds: readonly CondFn[], scope: Scope): Promise<boolean> {
  for (const c of conds) {
    const r = c(scope);
    if (!(r instanceof Promise ? await r : r)) return false;
  }
  return true;
}

export async function buildRecords(plan: CrmPlan, activity: CallActivity): Promise<CrmRecord[]> {
  // Built from no synced event (all ignored): there is no call to write.
  if (activity.eventIds.length === 0) return [];
  const scope: Scope = { root: activity, event: null };
  if (!(await holds(plan.when, scope))) return [];
  const out: CrmRecord[] = [];
  if (await holds(plan.activity.when, scope)) out.push(await buildRecord(plan, plan.activity, activity, scope, activity.externalId));
  if (activity.callback !== null && (await holds(plan.followup.when, scope))) {
    out.push(await buildRecord(plan, plan.followup, activity, scope, `${activity.externalId}:callback`));
  }
  return out;
}

async function buildRecord(plan: CrmPlan, record: RecordPlan, activity: CallActivity, scope: Scope, externalId: string): Promise<CrmRecord> {
  const fields: Record<string, CrmFieldValue> = {};
  for (const [name, fn] of record.fields) {
    const raw = await run(fn, scope, activity, `${record.object}.${name}`);
    const value = crmValue(raw);
    if (value === undefined) {
      throw new MappingError(`${plan.crm} ${record.object}.${name} needs text, a number or true/false, but the mapping gave ${Array.isArray(raw) ? 'a list' : 'a map'}`, {
        source: activity.source,
        file: fn.file,
        line: fn.line,
        field: name,
      });
    }
    // Empty values are left out rather than written: an update never clears what a CRM user typed.
    if (value !== null) fields[name] = value;
  }
  const lookups: Record<string, LookupRequest> = {};
  for (const [name, lookup] of record.lookups) {
    const raw = await run({ ...lookup, value: lookup.value.value }, scope, activity, `lookups.${name}`);
    const request = lookupRequest(lookup.value, raw);
    if (request) lookups[name] = request;
  }
  return {
    kind: record.kind,
    object: record.object,
    externalId,
    fields,
    createOnly: record.createOnly.filter((f) => f in fields),
    lookups,
  };
}

async function run(fn: Located<ValueFn>, scope: Scope, activity: CallActivity, field: string): Promise<unknown> {
  try {
    const r = fn.value(scope);
    return r instanceof Promise ? await r : r;
  } catch (err) {
    if (err instanceof MappingError) throw err.details.field ? err : new MappingError(err.message, { ...err.details, field });
    throw new MappingError(`${field}: ${(err as Error).message ?? String(err)}`, {
      source: activity.source,
      file: fn.file,
      line: fn.line,
      field,
    });
  }
}

/** undefined: not writable (a list or map). */
function crmValue(raw: unknown): CrmFieldValue | undefined {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string') return raw.trim() === '' ? null : raw;
  if (typeof raw === 'number') return Number.isFinite(raw) ? raw : null;
  if (typeof raw === 'boolean') return raw;
  if (raw instanceof Date) return raw.toISOString();
  return undefined;
}

/**
 * A lookup is only asked for when its value can match: phone lookups need
 * an E.164 number, email lookups an email address.
 */
function lookupRequest(lookup: CompiledLookup, raw: unknown): LookupRequest | null {
  const text = toText(raw)?.trim() ?? '';
  if (text === '') return null;
  switch (lookup.by) {
    case 'phone':
      return isE164(text) ? { by: 'phone', value: text } : null;
    case 'email': {
      const email = toEmail(text);
      return email ? { by: 'email', value: email } : null;
    }
    case 'id':
      return { by: 'id', value: text };
    case 'field':
      // The schema requires object and field with by: field.
      return lookup.object && lookup.field ? { by: 'field', object: lookup.object, field: lookup.field, value: text } : null;
  }
}
