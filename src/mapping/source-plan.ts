import type { EventDisposition, SourceName } from '../core/event';
import { CALLBACK_STATUSES } from '../core/activity';
import { checkEventTypes, compileCondition } from './compile-condition';
import type { CompileEnv, CondFn, NamedConditions, ValueFn } from './compile-env';
import { compileValue } from './compile-value';
import { type FieldRulesInput, type RuleInput, type ValueInput, type SourceFileInput } from './file-inputs';
import { ACTIVITY_FIELD_KINDS, ACTIVITY_FIELDS, CALLBACK_FIELD_KINDS, CALLBACK_FIELDS, type ActivityFieldName, type CallbackFieldName, type FieldKind, type Merge, type SortKey } from './language-terms';
import { suggest, type YamlPath } from './yaml-file';

/**
 * A source file compiled into the plan the fold runs: what intake does with
 * each event type, the fold order, and each field's rules as closures.
 */

export interface CompiledRule {
  events: ReadonlySet<string> | null;
  when: CondFn | null;
  value: ValueFn;
  merge: Merge;
}

export interface CompiledField {
  /** activity: a canonical field; custom: custom.<name>; callback: callback.<name> */
  target: 'activity' | 'custom' | 'callback';
  name: string;
  kind: FieldKind;
  rules: CompiledRule[];
  line: number;
}

export interface DeriveStep {
  target: 'activity' | 'custom' | 'callback';
  name: string;
  kind: FieldKind;
  value: ValueFn;
  line: number;
}

export interface SourcePlan {
  source: SourceName;
  file: string;
  dispositions: ReadonlyMap<string, EventDisposition>;
  unknown: EventDisposition;
  rank: ReadonlyMap<string, number>;
  sort: readonly SortKey[];
  fields: CompiledField[];
  callback: CompiledField[];
  derive: DeriveStep[];
  final: CondFn[];
  except: CondFn[];
  /** custom.* names the activity can carry (declared or derived). */
  customNames: ReadonlySet<string>;
}

// ---------------------------------------------------------------------------
// Compile

export function compileSourcePlan(
  source: SourceName,
  input: SourceFileInput,
  env: CompileEnv,
  named: NamedConditions,
): SourcePlan {
  const { yaml } = env;
  const dispositions = new Map<string, EventDisposition>();
  for (const disposition of ['sync', 'ignore', 'drop'] as const) {
    (input.events[disposition] ?? []).forEach((type, i) => {
      const earlier = dispositions.get(type);
      if (earlier !== undefined) {
        env.errors.push(yaml.error(['events', disposition, i], `event type "${type}" is already listed under events.${earlier}`));
        return;
      }
      dispositions.set(type, disposition);
    });
  }

  const rank = new Map<string, number>();
  (input.fold?.order ?? []).forEach((type, i) => {
    if (rank.has(type)) env.errors.push(yaml.error(['fold', 'order', i], `event type "${type}" is listed twice`));
    rank.set(type, i);
  });
  checkEventTypes(input.fold?.order ?? [], ['fold', 'order'], env);
  const defaultMerge = input.fold?.merge ?? 'last';

  const customNames = new Set([
    ...Object.keys(input.activity.custom ?? {}),
    ...Object.keys(input.derive ?? {})
      .filter((k) => k.startsWith('custom.'))
      .map((k) => k.slice('custom.'.length)),
  ]);

  const fields: CompiledField[] = [];
  for (const name of ACTIVITY_FIELDS) {
    const rules = input.activity[name];
    if (rules !== undefined) {
      fields.push(compileField('activity', name, ACTIVITY_FIELD_KINDS[name], rules, ['activity', name], defaultMerge, env));
    }
  }
  for (const [name, rules] of Object.entries(input.activity.custom ?? {})) {
    fields.push(compileField('custom', name, 'json', rules, ['activity', 'custom', name], defaultMerge, env));
  }
  const callback: CompiledField[] = [];
  for (const name of CALLBACK_FIELDS) {
    const rules = input.callback?.[name];
    if (rules !== undefined) {
      callback.push(compileField('callback', name, CALLBACK_FIELD_KINDS[name], rules, ['callback', name], defaultMerge, env));
    }
  }
  if (input.callback !== undefined && input.callback.dueAt === undefined) {
    env.errors.push(yaml.error(['callback'], 'callback needs dueAt: a follow-up task without a due date is never created'));
  }

  const activityEnv: CompileEnv = { ...env, scope: 'activity', syncedEvents: null, customNames };
  const derive: DeriveStep[] = [];
  for (const [key, value] of Object.entries(input.derive ?? {})) {
    const target = deriveTarget(key);
    if ('error' in target) {
      env.errors.push(yaml.error(['derive', key], target.error, { key: true }));
      continue;
    }
    derive.push({
      ...target,
      value: compileValue(value, ['derive', key], activityEnv),
      line: yaml.error(['derive', key], '').line,
    });
  }

  const final = input.lifecycle.final.map((c, i) => compileCondition(c, ['lifecycle', 'final', i], env));
  const except = (input.lifecycle.except ?? []).map((c, i) => compileCondition(c, ['lifecycle', 'except', i], env));

  // Named conditions nobody uses still get checked.
  for (const key of Object.keys(named.inputs)) compileCondition({ is: key }, ['conditions', key], env);

  return {
    source,
    file: yaml.file,
    dispositions,
    unknown: input.events.unknown,
    rank,
    sort: input.fold?.sort ?? ['time', 'rank'],
    fields,
    callback,
    derive,
    final,
    except,
    customNames,
  };
}

function compileField(
  target: CompiledField['target'],
  name: string,
  kind: FieldKind,
  input: FieldRulesInput,
  at: YamlPath,
  defaultMerge: Merge,
  env: CompileEnv,
): CompiledField {
  const list = Array.isArray(input) ? input : [input];
  const rules = list.map((rule, i) => compileRule(rule, Array.isArray(input) ? [...at, i] : at, defaultMerge, env));
  if (kind === 'callbackStatus') {
    list.forEach((rule, i) => checkStatusLiterals(rule, Array.isArray(input) ? [...at, i] : at, env));
  }
  return { target, name, kind, rules, line: env.yaml.error(at, '').line };
}

/**
 * A constant written as callback.status must be a status; caught at load
 * rather than on the first call that reaches it. Only the places whose
 * constant is the result as written are checked (a plain value, const,
 * then/else, coalesce items, default); a table's values are its own.
 */
function checkStatusLiterals(value: ValueInput | RuleInput | undefined, at: YamlPath, env: CompileEnv): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object') {
    const text = String(value).trim().toLowerCase();
    if (!(CALLBACK_STATUSES as readonly string[]).includes(text)) {
      const hint = suggest(String(value), CALLBACK_STATUSES);
      env.errors.push(env.yaml.error(at, `callback.status must be one of ${CALLBACK_STATUSES.join(', ')}, not "${String(value)}"${hint ? ` (did you mean "${hint}"?)` : ''}`));
    }
    return;
  }
  if (value.const !== undefined && (value.const === null || typeof value.const !== 'object')) checkStatusLiterals(value.const, [...at, 'const'], env);
  checkStatusLiterals(value.then, [...at, 'then'], env);
  checkStatusLiterals(value.else, [...at, 'else'], env);
  value.coalesce?.forEach((item, i) => checkStatusLiterals(item, [...at, 'coalesce', i], env));
  if (value.default !== undefined && (value.default === null || typeof value.default !== 'object')) checkStatusLiterals(value.default, [...at, 'default'], env);
}

function compileRule(rule: RuleInput, at: YamlPath, defaultMerge: Merge, env: CompileEnv): CompiledRule {
  if (rule === null || typeof rule !== 'object') {
    return { events: null, when: null, value: compileValue(rule, at, env), merge: defaultMerge };
  }
  const { events, when, merge, ...value } = rule;
  let eventSet: Set<string> | null = null;
  if (events !== undefined) {
    const list = Array.isArray(events) ? events : [events];
    checkEventTypes(list, [...at, 'events'], env);
    eventSet = new Set(list);
  }
  return {
    events: eventSet,
    when: when === undefined ? null : compileCondition(when, [...at, 'when'], env),
    value: compileValue(value, at, env),
    merge: merge ?? defaultMerge,
  };
}

function deriveTarget(key: string): { target: DeriveStep['target']; name: string; kind: FieldKind } | { error: string } {
  if ((ACTIVITY_FIELDS as readonly string[]).includes(key)) {
    return { target: 'activity', name: key, kind: ACTIVITY_FIELD_KINDS[key as ActivityFieldName] };
  }
  if (key.startsWith('custom.') && /^custom\.[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
    return { target: 'custom', name: key.slice('custom.'.length), kind: 'json' };
  }
  if (key.startsWith('callback.') && (CALLBACK_FIELDS as readonly string[]).includes(key.slice('callback.'.length))) {
    const name = key.slice('callback.'.length) as CallbackFieldName;
    return { target: 'callback', name, kind: CALLBACK_FIELD_KINDS[name] };
  }
  const hint = suggest(key, [...ACTIVITY_FIELDS, ...CALLBACK_FIELDS.map((f) => `callback.${f}`)]);
  return {
    error: `derive can fill an activity field, custom.<name> or callback.<field>, not "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`,
  };
}
