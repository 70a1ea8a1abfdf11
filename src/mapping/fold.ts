import type { SourceName } from '../core/event';
import {
  checkEventTypes,
  compileCondition,
  compileValue,
  type CompileEnv,
  type CondFn,
  type NamedConditions,
  type Scope,
  type ValueFn,
} from './compile';
import { ACTIVITY_FIELD_KINDS, ACTIVITY_FIELDS, CALLBACK_FIELD_KINDS, CALLBACK_FIELDS, type ActivityFieldName, type CallbackFieldName, type FieldKind, type FieldRulesInput, type Merge, type RuleInput, type SortKey, type ValueInput, type SourceFileInput } from './schema';
import { CALLBACK_STATUSES, type CallbackStatus } from '../core/activity';
import { toNumber, toText } from './transforms';
import { activityTimeMs, isoFromMs } from '../core/time';
import { MappingError } from '../core/errors';
import { type JsonValue } from '../core/json';
import { emptyActivity, type CallActivity, type CallbackRequest } from '../core/activity';
import { type EventDisposition, type StoredEvent } from '../core/event';
import { suggest, type YamlPath } from './yaml-file';

/**
 * The fold: all events of one call become one activity.
 *
 * Order-independent and idempotent by construction:
 *  1. only events the file classifies as `sync` are read;
 *  2. duplicates (same dedupeKey) collapse to one (the lowest id);
 *  3. events are put in a total order computed from what is stored with
 *     them (vendor time, the file's rank of the event type, the time intake
 *     received them, dedupeKey), never from the order they are handed to the
 *     fold or their ids;
 *  4. every field is chosen from that order by a declared rule (last value,
 *     first, min, max, the last matching event).
 * The same set of events therefore gives the same activity whatever order it
 * arrived in and however often each event repeats.
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

// ---------------------------------------------------------------------------
// Fold

interface Ordered {
  event: StoredEvent;
  scope: Scope;
}

export function classifyWith(plan: SourcePlan, eventType: string): EventDisposition {
  return plan.dispositions.get(eventType) ?? plan.unknown;
}

/** The events the fold reads, deduplicated and in their content-defined order. */
export function orderEvents(plan: SourcePlan, events: readonly StoredEvent[]): StoredEvent[] {
  const byKey = new Map<string, StoredEvent>();
  for (const e of events) {
    if (classifyWith(plan, e.eventType) !== 'sync') continue;
    const seen = byKey.get(e.dedupeKey);
    if (seen === undefined || e.id < seen.id) byKey.set(e.dedupeKey, e);
  }
  const unranked = plan.rank.size;
  const keyed = [...byKey.values()].map((e) => ({
    e,
    // Events whose vendor time is missing or malformed sort first: they can
    // still fill gaps, but a timed event wins a "last value" choice.
    time: e.vendorTime ? e.vendorTime.getTime() : Number.NEGATIVE_INFINITY,
    rank: plan.rank.get(e.eventType) ?? unranked,
    received: e.receivedAt.getTime(),
  }));
  keyed.sort((a, b) => {
    for (const by of plan.sort) {
      const d = a[by] - b[by];
      if (d !== 0 && !Number.isNaN(d)) return d;
    }
    if (a.e.dedupeKey !== b.e.dedupeKey) return a.e.dedupeKey < b.e.dedupeKey ? -1 : 1;
    return a.e.id - b.e.id;
  });
  return keyed.map((k) => k.e);
}

export async function foldEvents(plan: SourcePlan, callKey: string, events: readonly StoredEvent[]): Promise<CallActivity> {
  for (const e of events) {
    if (e.source !== plan.source) {
      throw new MappingError(`event ${e.id} is from ${e.source}, not ${plan.source}`, { source: plan.source });
    }
  }
  const ordered: Ordered[] = orderEvents(plan, events).map((event) => ({ event, scope: { root: event.payload, event } }));

  const activity: CallActivity = {
    ...emptyActivity(plan.source, callKey),
    firstEventAt: firstEventAt(ordered),
    eventIds: ordered.map((o) => o.event.id),
  };
  const fields = activity as unknown as Record<string, unknown>;

  for (const field of plan.fields) {
    const value = await resolveField(plan, field, ordered);
    if (value === null) continue;
    if (field.target === 'custom') activity.custom[field.name] = value as JsonValue;
    else fields[field.name] = value;
  }

  const callbackValues: Record<string, unknown> = {};
  for (const field of plan.callback) callbackValues[field.name] = await resolveField(plan, field, ordered);
  activity.callback = makeCallback(callbackValues);

  activity.final = await isFinal(plan, ordered);

  const view = { root: activity, event: null };
  for (const step of plan.derive) {
    await applyDerive(plan, step, activity, view);
  }

  // The contract: the label is the raw code when no table gave one.
  if (activity.dispositionLabel === null && activity.dispositionCode !== null) activity.dispositionLabel = activity.dispositionCode;
  return activity;
}

/**
 * The earliest of the folded events' times (vendor time, else received
 * time). A minimum over the deduplicated set, so it does not depend on the
 * arrival order either.
 */
function firstEventAt(ordered: readonly Ordered[]): string | null {
  let earliest: number | null = null;
  for (const { event } of ordered) {
    const t = (event.vendorTime ?? event.receivedAt).getTime();
    if (Number.isFinite(t) && (earliest === null || t < earliest)) earliest = t;
  }
  return earliest === null ? null : isoFromMs(earliest);
}

function makeCallback(values: Record<string, unknown>): CallbackRequest | null {
  const dueAt = values.dueAt;
  if (typeof dueAt !== 'string') return null;
  return {
    dueAt,
    number: typeof values.number === 'string' ? values.number : null,
    notes: typeof values.notes === 'string' ? values.notes : null,
    agentEmail: typeof values.agentEmail === 'string' ? values.agentEmail : null,
    status: isCallbackStatus(values.status) ? values.status : 'open',
  };
}

async function isFinal(plan: SourcePlan, ordered: readonly Ordered[]): Promise<boolean> {
  for (const o of ordered) {
    if (!(await anyOf(plan.final, o.scope))) continue;
    if (await anyOf(plan.except, o.scope)) continue;
    return true;
  }
  return false;
}

async function anyOf(conds: readonly CondFn[], scope: Scope): Promise<boolean> {
  for (const c of conds) {
    const r = c(scope);
    if (r instanceof Promise ? await r : r) return true;
  }
  return false;
}

async function applyDerive(plan: SourcePlan, step: DeriveStep, activity: CallActivity, view: Scope): Promise<void> {
  const current =
    step.target === 'custom'
      ? (activity.custom[step.name] ?? null)
      : step.target === 'callback'
        ? activity.callback === null
          ? null
          : activity.callback[step.name as CallbackFieldName]
        : (activity as unknown as Record<string, unknown>)[step.name];
  if (current !== null && current !== undefined) return;
  if (step.target === 'callback' && activity.callback === null && step.name !== 'dueAt') return;
  const raw = await evaluate(plan, step.name, step.line, () => step.value(view));
  const value = normalize(plan, step.kind, step.target === 'custom' ? `custom.${step.name}` : step.name, step.line, raw);
  if (value === null) return;
  if (step.target === 'custom') activity.custom[step.name] = value as JsonValue;
  else if (step.target === 'callback') {
    const cb: CallbackRequest = activity.callback ?? { dueAt: '', number: null, notes: null, agentEmail: null, status: 'open' };
    (cb as unknown as Record<string, unknown>)[step.name] = value;
    activity.callback = cb;
  } else (activity as unknown as Record<string, unknown>)[step.name] = value;
}

async function evaluate(plan: SourcePlan, field: string, line: number, run: () => unknown): Promise<unknown> {
  try {
    const r = run();
    return r instanceof Promise ? await r : r;
  } catch (err) {
    throw withField(err, plan, field, line);
  }
}

function withField(err: unknown, plan: SourcePlan, field: string, line: number): MappingError {
  if (err instanceof MappingError) {
    return err.details.field ? err : new MappingError(err.message, { ...err.details, field });
  }
  return new MappingError(`${field}: ${(err as Error).message ?? String(err)}`, { source: plan.source, file: plan.file, line, field });
}

async function resolveField(plan: SourcePlan, field: CompiledField, ordered: readonly Ordered[]): Promise<unknown> {
  const label = field.target === 'activity' ? field.name : `${field.target}.${field.name}`;
  for (const rule of field.rules) {
    const picked = await pick(plan, field, label, rule, ordered);
    if (picked.matched) return picked.value;
  }
  return null;
}

/**
 * One rule's choice. A rule "matches" when it yields a value (for
 * lastEvent: when any event passes its filters, even with an empty value),
 * and then later rules of the field are not consulted.
 */
async function pick(
  plan: SourcePlan,
  field: CompiledField,
  label: string,
  rule: CompiledRule,
  ordered: readonly Ordered[],
): Promise<{ matched: boolean; value: unknown }> {
  const read = async (o: Ordered): Promise<{ applies: boolean; value: unknown }> => {
    if (rule.events !== null && !rule.events.has(o.event.eventType)) return { applies: false, value: null };
    if (rule.when !== null) {
      const ok = await evaluate(plan, label, field.line, () => rule.when?.(o.scope));
      if (!ok) return { applies: false, value: null };
    }
    const raw = await evaluate(plan, label, field.line, () => rule.value(o.scope));
    return { applies: true, value: normalize(plan, field.kind, label, field.line, raw) };
  };

  switch (rule.merge) {
    case 'last':
      for (let i = ordered.length - 1; i >= 0; i--) {
        const o = ordered[i];
        if (!o) continue;
        const r = await read(o);
        if (r.value !== null) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'first':
      for (const o of ordered) {
        const r = await read(o);
        if (r.value !== null) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'lastEvent':
      for (let i = ordered.length - 1; i >= 0; i--) {
        const o = ordered[i];
        if (!o) continue;
        const r = await read(o);
        if (r.applies) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'min':
    case 'max': {
      let best: unknown = null;
      for (const o of ordered) {
        const r = await read(o);
        if (r.value === null) continue;
        if (best === null || compare(field.kind, r.value, best) * (rule.merge === 'min' ? -1 : 1) > 0) best = r.value;
      }
      return { matched: best !== null, value: best };
    }
  }
}

function compare(kind: FieldKind, a: unknown, b: unknown): number {
  if (kind === 'time') return (activityTimeMs(a) ?? 0) - (activityTimeMs(b) ?? 0);
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== null && nb !== null) return na - nb;
  const ta = toText(a) ?? '';
  const tb = toText(b) ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v !== null && typeof v === 'object') return 'a map';
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** A mapped value in the shape its canonical field needs, or a MappingError that names the field. */
export function normalize(plan: SourcePlan, kind: FieldKind, label: string, line: number, raw: unknown): unknown {
  if (raw === null || raw === undefined) return null;
  if (typeof raw === 'string' && raw.trim() === '') return null;
  const bad = (what: string): MappingError =>
    new MappingError(`${label} needs ${what}, but the mapping gave ${describe(raw)}`, {
      source: plan.source,
      file: plan.file,
      line,
      field: label,
    });
  switch (kind) {
    case 'direction': {
      const t = toText(raw)?.trim().toLowerCase();
      return t === 'inbound' || t === 'outbound' ? t : null;
    }
    case 'text':
      if (typeof raw === 'object' && !(raw instanceof Date)) throw bad('text');
      return toText(raw);
    case 'time': {
      if (typeof raw === 'number') throw bad('a time (add time: epoch-s, epoch-ms or epoch.millis to read a number)');
      if (typeof raw !== 'string' && !(raw instanceof Date)) throw bad('a time');
      const ms = activityTimeMs(raw);
      return ms === null ? null : isoFromMs(ms);
    }
    case 'seconds': {
      if (typeof raw === 'object') throw bad('a number of seconds');
      const n = toNumber(raw);
      return n === null ? null : Math.round(n);
    }
    case 'json':
      if (raw instanceof Date) return raw.toISOString();
      return raw;
    case 'callbackStatus': {
      const t = typeof raw === 'string' ? raw.trim().toLowerCase() : null;
      if (!isCallbackStatus(t)) throw bad(`one of ${CALLBACK_STATUSES.join(', ')}`);
      return t;
    }
  }
}

function isCallbackStatus(v: unknown): v is CallbackStatus {
  return typeof v === 'string' && (CALLBACK_STATUSES as readonly string[]).includes(v);
}
