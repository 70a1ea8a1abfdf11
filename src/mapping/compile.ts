import jsonata from 'jsonata';
import type { CountryCode } from 'libphonenumber-js';
import type { MappingFileError } from './errors';
import { getAt, parsePath, type Segment } from './paths';
import {
  ACTIVITY_READABLE,
  CALLBACK_FIELDS,
  EVENT_META,
  TEMPLATE_FILTERS,
  type ConditionInput,
  type Scalar,
  type ValueInput,
  type ValueObjectInput,
} from './schema';
import { convertDuration, looseEquals, tableKey, toBoolean, toEmail, toNumber, toText, truncate } from './transforms';
import { isPhoneRegion, toPhone } from '../core/phone';
import { activityTimeMs, isoFromMs, isValidZone, toDate, toEpochMs } from '../core/time';
import { MappingError } from '../core/errors';
import { type StoredEvent } from '../core/event';
import { suggest, type YamlFile, type YamlPath } from './yaml-file';

/**
 * Compiles value specs, conditions and templates into closures, once, at
 * load. Evaluating a mapping is then plain function calls: no YAML, no zod,
 * no parsing per event. Everything is synchronous except JSONata (whose
 * evaluate() is async); `MaybeP` lets the sync majority skip the microtask.
 */

export type MaybeP<T> = T | Promise<T>;

/** What a compiled value reads: a payload (event scope) or the activity (activity scope). */
export interface Scope {
  root: unknown;
  event: StoredEvent | null;
}

export type ValueFn = (scope: Scope) => MaybeP<unknown>;
export type CondFn = (scope: Scope) => MaybeP<boolean>;

/** Named andThen, not then: a module exporting `then` becomes a thenable when imported dynamically. */
export function andThen<A, B>(value: MaybeP<A>, f: (a: A) => MaybeP<B>): MaybeP<B> {
  return value instanceof Promise ? value.then(f) : f(value);
}

export type Table = ReadonlyMap<string, Scalar>;

/** Named conditions of a source file, compiled on first use per scope. */
export interface NamedConditions {
  inputs: Record<string, ConditionInput>;
  at: YamlPath;
  compiled: Map<string, CondFn>;
  compiling: Set<string>;
}

export interface CompileEnv {
  yaml: YamlFile;
  scope: 'event' | 'activity';
  errors: MappingFileError[];
  /** For MappingError details at run time. */
  source: string | undefined;
  tables: (name: string) => Table | undefined;
  tableNames: () => string[];
  conditions: NamedConditions | null;
  /** Event scope: the synced event types (rules and conditions may only name these). */
  syncedEvents: ReadonlySet<string> | null;
  /** Activity scope: the custom names the activity can have, or null when any is allowed. */
  customNames: ReadonlySet<string> | null;
  phoneRegion: CountryCode;
  hccTimezone: string;
  /**
   * Event scope: the headers intake stores for this source (its adapter's
   * keptHeaders); `@headers.<name>` for any other is an error, since it
   * would read nothing in production. Null: not checked.
   */
  keptHeaders: ReadonlySet<string> | null;
}

const EMPTY = null;

function fail(env: CompileEnv, at: YamlPath, message: string, key = false): void {
  env.errors.push(env.yaml.error(at, message, { key }));
}

function location(env: CompileEnv, at: YamlPath): { file: string; line: number } {
  const e = env.yaml.error(at, '');
  return { file: e.file, line: e.line };
}

/** Empty text counts as missing everywhere: vendors send "" for "no value". */
function clean(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'string' && v.trim() === '') return null;
  return v;
}

// ---------------------------------------------------------------------------
// Paths

export function compilePath(text: string, at: YamlPath, env: CompileEnv): (scope: Scope) => unknown {
  const parsed = parsePath(text);
  if ('error' in parsed) {
    fail(env, at, parsed.error);
    return () => EMPTY;
  }
  const { meta, segments } = parsed;
  if (env.scope === 'activity') {
    if (meta !== null) {
      fail(env, at, `@${meta} reads the event, but this value reads the activity (use an activity field such as customerNumber)`);
      return () => EMPTY;
    }
    checkActivityPath(segments, at, env);
    return (scope) => getAt(scope.root, segments);
  }
  if (meta === null) return (scope) => getAt(scope.root, segments);
  if (!(EVENT_META as readonly string[]).includes(meta)) {
    const hint = suggest(meta, EVENT_META);
    fail(env, at, `unknown event field @${meta}${hint ? ` (did you mean @${hint}?)` : ''}; known: ${EVENT_META.map((m) => `@${m}`).join(', ')}`);
    return () => EMPTY;
  }
  if (meta === 'headers') {
    // Intake keeps header names lower-case.
    const rest = segments.map((s) => (typeof s === 'string' ? s.toLowerCase() : s));
    const [name] = rest;
    if (typeof name !== 'string') {
      fail(env, at, `@headers needs a header name, e.g. @headers.${[...(env.keptHeaders ?? ['user-agent'])][0] ?? 'user-agent'}`);
      return () => EMPTY;
    }
    if (env.keptHeaders !== null && !env.keptHeaders.has(name)) {
      const kept = [...env.keptHeaders];
      const hint = suggest(name, kept);
      fail(
        env,
        at,
        `@headers.${name} is never stored for ${env.source ?? 'this source'}, so it would always read empty${hint ? ` (did you mean @headers.${hint}?)` : ''}; the headers kept are ${kept.join(', ')}`,
      );
      return () => EMPTY;
    }
    return (scope) => getAt(scope.event?.headers ?? null, rest);
  }
  if (segments.length > 0) {
    fail(env, at, `@${meta} has no parts to read`);
    return () => EMPTY;
  }
  return (scope) => eventMeta(scope.event, meta);
}

function eventMeta(event: StoredEvent | null, meta: string): unknown {
  if (event === null) return null;
  switch (meta) {
    case 'eventType':
      return event.eventType;
    case 'callKey':
      return event.callKey;
    case 'dedupeKey':
      return event.dedupeKey;
    case 'source':
      return event.source;
    case 'vendorTime':
      return event.vendorTime ? event.vendorTime.toISOString() : null;
    case 'receivedAt':
      return event.receivedAt.toISOString();
    default:
      return null;
  }
}

function checkActivityPath(segments: readonly Segment[], at: YamlPath, env: CompileEnv): void {
  const [first, second] = segments;
  if (typeof first !== 'string' || !(ACTIVITY_READABLE as readonly string[]).includes(first)) {
    const hint = typeof first === 'string' ? suggest(first, ACTIVITY_READABLE) : undefined;
    fail(env, at, `"${String(first)}" is not an activity field${hint ? ` (did you mean "${hint}"?)` : ''}`);
    return;
  }
  if (first === 'callback' && second !== undefined) {
    if (typeof second !== 'string' || !(CALLBACK_FIELDS as readonly string[]).includes(second)) {
      fail(env, at, `"callback.${String(second)}" is not a callback field; known: ${CALLBACK_FIELDS.join(', ')}`);
    }
  }
  if (first === 'custom' && typeof second === 'string' && env.customNames !== null && !env.customNames.has(second)) {
    const hint = suggest(second, [...env.customNames]);
    fail(env, at, `"custom.${second}" is not defined in activity.custom${hint ? ` (did you mean "custom.${hint}"?)` : ''}`);
  }
}

// ---------------------------------------------------------------------------
// Zones, tables, regions

export function resolveZone(zone: string | undefined, at: YamlPath, env: CompileEnv): string {
  if (zone === undefined || zone === 'UTC') return 'UTC';
  if (zone === '$hccTimezone') return env.hccTimezone;
  if (zone.startsWith('$')) {
    fail(env, at, `unknown setting ${zone}; the one a zone can name is $hccTimezone`);
    return 'UTC';
  }
  if (!isValidZone(zone)) {
    fail(env, at, `"${zone}" is not an IANA time zone (e.g. America/Chicago, Europe/Helsinki, UTC)`);
    return 'UTC';
  }
  return zone;
}

function resolveTable(name: string, at: YamlPath, env: CompileEnv): Table {
  const table = env.tables(name);
  if (table) return table;
  const hint = suggest(name, env.tableNames());
  fail(env, at, `unknown table "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
  return new Map();
}

function compileRegex(pattern: string, flags: string, at: YamlPath, env: CompileEnv): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    fail(env, at, `not a valid regular expression: ${(err as Error).message}`);
    return /$^/;
  }
}

// ---------------------------------------------------------------------------
// JSONata

function compileJsonata(text: string, at: YamlPath, env: CompileEnv): (scope: Scope) => Promise<unknown> {
  let expr: jsonata.Expression;
  try {
    // A runaway expression must not stall the worker: JSONata enforces these limits itself.
    expr = jsonata(text, { timeout: 1000, stack: 500 });
  } catch (err) {
    const e = err as Partial<jsonata.JsonataError>;
    fail(env, at, `JSONata: ${e.message ?? String(err)}${typeof e.position === 'number' ? ` (at character ${e.position})` : ''}`);
    return () => Promise.resolve(EMPTY);
  }
  const where = location(env, at);
  const source = env.source;
  const eventScope = env.scope === 'event';
  return async (scope) => {
    const bindings = eventScope && scope.event ? { event: eventBinding(scope.event) } : {};
    try {
      return plain(await expr.evaluate(scope.root, bindings));
    } catch (err) {
      const message = (err as Partial<jsonata.JsonataError>).message ?? String(err);
      throw new MappingError(`JSONata failed: ${message}`, { ...(source ? { source } : {}), ...where });
    }
  };
}

function eventBinding(event: StoredEvent): Record<string, unknown> {
  return {
    type: event.eventType,
    callKey: event.callKey,
    dedupeKey: event.dedupeKey,
    source: event.source,
    vendorTime: event.vendorTime ? event.vendorTime.toISOString() : null,
    receivedAt: event.receivedAt.toISOString(),
    headers: event.headers,
  };
}

/** JSONata answers sequences (arrays with extra properties) and undefined; keep plain JSON. */
function plain(v: unknown): unknown {
  if (v === undefined || typeof v === 'function') return null;
  if (v === null || typeof v !== 'object') return v;
  return JSON.parse(JSON.stringify(v)) as unknown;
}

// ---------------------------------------------------------------------------
// Conditions

export function compileCondition(c: ConditionInput, at: YamlPath, env: CompileEnv): CondFn {
  const parts: CondFn[] = [];
  if (c.event !== undefined) parts.push(compileEventTest(c.event, [...at, 'event'], env));
  if (c.path !== undefined) parts.push(compilePathTest(c, at, env));
  if (c.all !== undefined) {
    const all = c.all.map((x, i) => compileCondition(x, [...at, 'all', i], env));
    parts.push((s) => every(all, s));
  }
  if (c.any !== undefined) {
    const any = c.any.map((x, i) => compileCondition(x, [...at, 'any', i], env));
    parts.push((s) => some(any, s));
  }
  if (c.not !== undefined) {
    const inner = compileCondition(c.not, [...at, 'not'], env);
    parts.push((s) => andThen(inner(s), (v) => !v));
  }
  if (c.is !== undefined) parts.push(compileNamed(c.is, [...at, 'is'], env));
  if (c.jsonata !== undefined) {
    const expr = compileJsonata(c.jsonata, [...at, 'jsonata'], env);
    parts.push((s) => expr(s).then((v) => v !== null && v !== false && v !== 0 && v !== ''));
  }
  if (parts.length === 1 && parts[0]) return parts[0];
  return (s) => every(parts, s);
}

function every(fns: readonly CondFn[], s: Scope, from = 0): MaybeP<boolean> {
  for (let i = from; i < fns.length; i++) {
    const fn = fns[i];
    if (!fn) continue;
    const r = fn(s);
    if (r instanceof Promise) return r.then((v) => (v ? every(fns, s, i + 1) : false));
    if (!r) return false;
  }
  return true;
}

function some(fns: readonly CondFn[], s: Scope, from = 0): MaybeP<boolean> {
  for (let i = from; i < fns.length; i++) {
    const fn = fns[i];
    if (!fn) continue;
    const r = fn(s);
    if (r instanceof Promise) return r.then((v) => (v ? true : some(fns, s, i + 1)));
    if (r) return true;
  }
  return false;
}

function compileEventTest(event: string | string[], at: YamlPath, env: CompileEnv): CondFn {
  if (env.scope === 'activity') {
    fail(env, at, 'event is not available here: this condition reads the activity, not an event', true);
    return () => false;
  }
  const types = Array.isArray(event) ? event : [event];
  checkEventTypes(types, at, env);
  const set = new Set(types);
  return (s) => s.event !== null && set.has(s.event.eventType);
}

export function checkEventTypes(types: readonly string[], at: YamlPath, env: CompileEnv): void {
  if (env.syncedEvents === null) return;
  types.forEach((t, i) => {
    if (env.syncedEvents?.has(t)) return;
    const hint = suggest(t, [...(env.syncedEvents ?? [])]);
    fail(
      env,
      Array.isArray(at) && types.length > 1 ? [...at, i] : at,
      `event type "${t}" is not in events.sync, so it never reaches the fold${hint ? ` (did you mean "${hint}"?)` : ''}`,
    );
  });
}

function compilePathTest(c: ConditionInput, at: YamlPath, env: CompileEnv): CondFn {
  const get = compilePath(c.path ?? '', [...at, 'path'], env);
  const ic = c.ignoreCase === true;
  const read = (s: Scope): unknown => clean(get(s));
  if (c.equals !== undefined) {
    const x = c.equals;
    return (s) => looseEquals(read(s), x, ic);
  }
  if (c.notEquals !== undefined) {
    const x = c.notEquals;
    return (s) => !looseEquals(read(s), x, ic);
  }
  if (c.in !== undefined) {
    const xs = c.in;
    return (s) => {
      const v = read(s);
      return xs.some((x) => looseEquals(v, x, ic));
    };
  }
  if (c.notIn !== undefined) {
    const xs = c.notIn;
    return (s) => {
      const v = read(s);
      return !xs.some((x) => looseEquals(v, x, ic));
    };
  }
  if (c.exists !== undefined) {
    const want = c.exists;
    return (s) => (read(s) !== null) === want;
  }
  if (c.matches !== undefined) {
    const re = compileRegex(c.matches, ic ? 'i' : '', [...at, 'matches'], env);
    return (s) => {
      const t = toText(read(s));
      return t !== null && re.test(t);
    };
  }
  const bound = (op: 'gt' | 'gte' | 'lt' | 'lte', limit: number): CondFn => (s) => {
    const n = toNumber(read(s));
    if (n === null) return false;
    return op === 'gt' ? n > limit : op === 'gte' ? n >= limit : op === 'lt' ? n < limit : n <= limit;
  };
  if (c.gt !== undefined) return bound('gt', c.gt);
  if (c.gte !== undefined) return bound('gte', c.gte);
  if (c.lt !== undefined) return bound('lt', c.lt);
  if (c.lte !== undefined) return bound('lte', c.lte);
  // The schema guarantees a test with every path; this is unreachable.
  return () => false;
}

function compileNamed(name: string, at: YamlPath, env: CompileEnv): CondFn {
  const named = env.conditions;
  const input = named?.inputs[name];
  if (!named || input === undefined) {
    const hint = named ? suggest(name, Object.keys(named.inputs)) : undefined;
    fail(env, at, `unknown condition "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; name it under conditions:`);
    return () => false;
  }
  const key = `${env.scope}:${name}`;
  const done = named.compiled.get(key);
  if (done) return done;
  if (named.compiling.has(key)) {
    fail(env, at, `condition "${name}" refers to itself`);
    return () => false;
  }
  named.compiling.add(key);
  // Late-bound so a condition used before it is compiled still works.
  let fn: CondFn = () => false;
  const forward: CondFn = (s) => fn(s);
  named.compiled.set(key, forward);
  fn = compileCondition(input, [...named.at, name], env);
  named.compiling.delete(key);
  return forward;
}

// ---------------------------------------------------------------------------
// Templates

type Filter = (text: string) => string;
type TemplatePart = { text: string } | { get: (s: Scope) => unknown; filters: Filter[] };

function compileFilter(spec: string, at: YamlPath, env: CompileEnv): Filter {
  const colon = spec.indexOf(':');
  const name = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  const arg = colon < 0 ? '' : spec.slice(colon + 1);
  switch (name) {
    case 'upper':
      return (t) => t.toUpperCase();
    case 'lower':
      return (t) => t.toLowerCase();
    case 'capitalize':
      return (t) => (t === '' ? t : t.charAt(0).toUpperCase() + t.slice(1));
    case 'or':
      return (t) => (t === '' ? arg : t);
    case 'prefix':
      return (t) => (t === '' ? t : arg + t);
    case 'suffix':
      return (t) => (t === '' ? t : t + arg);
    default: {
      const hint = suggest(name, TEMPLATE_FILTERS);
      fail(env, at, `unknown template filter "${name}"${hint ? ` (did you mean "${hint}"?)` : ''}; known: ${TEMPLATE_FILTERS.join(', ')}`);
      return (t) => t;
    }
  }
}

function parseTemplateLine(line: string, at: YamlPath, env: CompileEnv): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < line.length) {
    const ch = line[i];
    if (ch === '{' && line[i + 1] === '{') {
      text += '{';
      i += 2;
    } else if (ch === '}' && line[i + 1] === '}') {
      text += '}';
      i += 2;
    } else if (ch === '{') {
      const end = line.indexOf('}', i);
      if (end < 0) {
        fail(env, at, `template: "{" at "${line.slice(i, i + 20)}" is not closed (write {{ for a literal brace)`);
        return parts;
      }
      if (text) parts.push({ text });
      text = '';
      const [paths = '', ...filters] = line.slice(i + 1, end).split('|');
      // `{agentName ?? agentEmail}`: the first of the paths that has a value.
      const getters = paths.split('??').map((p) => compilePath(p.trim(), at, env));
      const get =
        getters.length === 1 && getters[0]
          ? getters[0]
          : (s: Scope): unknown => {
              for (const g of getters) {
                const v = clean(g(s));
                if (v !== null) return v;
              }
              return null;
            };
      parts.push({ get, filters: filters.map((f) => compileFilter(f, at, env)) });
      i = end + 1;
    } else {
      text += ch;
      i += 1;
    }
  }
  if (text) parts.push({ text });
  return parts;
}

function render(parts: readonly TemplatePart[], s: Scope, lineBreak?: string): { text: string; placeholders: number; filled: number } {
  let text = '';
  let placeholders = 0;
  let filled = 0;
  for (const p of parts) {
    if ('text' in p) {
      text += p.text;
      continue;
    }
    placeholders += 1;
    let v = formatValue(clean(p.get(s)));
    for (const f of p.filters) v = f(v);
    // A multi-line value (notes) breaks lines the way the template does.
    if (lineBreak !== undefined && v.includes('\n')) v = v.replace(/\r?\n/g, lineBreak);
    if (v !== '') filled += 1;
    text += v;
  }
  return { text, placeholders, filled };
}

function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '';
  const t = toText(v);
  return t ?? JSON.stringify(v);
}

/**
 * `{path|filter|filter:arg}` placeholders; `{a ?? b}` takes the first path with a value. In a multi-line template, a line
 * whose placeholders are all empty is left out, so "Recording: {recordingUrl}"
 * disappears when there is no recording.
 */
export function compileTemplate(template: string, lineBreak: string | undefined, at: YamlPath, env: CompileEnv): (s: Scope) => string | null {
  const lines = template.replace(/\r\n/g, '\n').split('\n').map((l) => parseTemplateLine(l, at, env));
  if (lines.length === 1) {
    const only = lines[0] ?? [];
    return (s) => {
      const t = render(only, s).text.trim();
      return t === '' ? null : t;
    };
  }
  const joiner = lineBreak ?? '\n';
  return (s) => {
    const kept: string[] = [];
    for (const line of lines) {
      const r = render(line, s, lineBreak);
      if (r.placeholders > 0 && r.filled === 0) continue;
      kept.push(r.text.trimEnd());
    }
    while (kept.length > 0 && kept[kept.length - 1] === '') kept.pop();
    while (kept.length > 0 && kept[0] === '') kept.shift();
    const t = kept.join(joiner);
    return t === '' ? null : t;
  };
}

// ---------------------------------------------------------------------------
// Values

export function compileValue(input: ValueInput, at: YamlPath, env: CompileEnv): ValueFn {
  if (input === null || typeof input !== 'object') {
    const v = clean(input);
    return () => v;
  }
  const base = compileSource(input, at, env);
  const step = compileSteps(input, at, env);
  return step ? (s) => andThen(base(s), (v) => step(clean(v))) : (s) => andThen(base(s), clean);
}

function compileSource(v: ValueObjectInput, at: YamlPath, env: CompileEnv): ValueFn {
  if (v.path !== undefined) {
    const get = compilePath(v.path, [...at, 'path'], env);
    return get;
  }
  if (v.const !== undefined) {
    const c = v.const;
    // Lists and maps are copied so no caller can change the mapping's constant.
    return c !== null && typeof c === 'object' ? () => structuredClone(c) : () => c;
  }
  if (v.template !== undefined) return compileTemplate(v.template, v.lineBreak, [...at, 'template'], env);
  if (v.coalesce !== undefined) {
    const fns = v.coalesce.map((x, i) => compileValue(x, [...at, 'coalesce', i], env));
    return (s) => firstPresent(fns, s, 0);
  }
  if (v.if !== undefined) {
    const cond = compileCondition(v.if, [...at, 'if'], env);
    const yes = v.then === undefined ? () => EMPTY : compileValue(v.then, [...at, 'then'], env);
    const no = v.else === undefined ? () => EMPTY : compileValue(v.else, [...at, 'else'], env);
    return (s) => andThen(cond(s), (ok) => (ok ? yes(s) : no(s)));
  }
  if (v.jsonata !== undefined) return compileJsonata(v.jsonata, [...at, 'jsonata'], env);
  if (v.secondsBetween !== undefined) {
    const [a, b] = v.secondsBetween.map((x, i) => compileValue(x, [...at, 'secondsBetween', i], env));
    if (!a || !b) return () => EMPTY;
    return (s) =>
      andThen(a(s), (from) =>
        andThen(b(s), (to) => {
          const f = activityTimeMs(from);
          const t = activityTimeMs(to);
          if (f === null || t === null || t < f) return EMPTY;
          return Math.round((t - f) / 1000);
        }),
      );
  }
  const shift = v.addSeconds ?? v.subtractSeconds;
  if (shift !== undefined) {
    const key = v.addSeconds !== undefined ? 'addSeconds' : 'subtractSeconds';
    const sign = key === 'addSeconds' ? 1 : -1;
    const [a, b] = shift.map((x, i) => compileValue(x, [...at, key, i], env));
    if (!a || !b) return () => EMPTY;
    return (s) =>
      andThen(a(s), (time) =>
        andThen(b(s), (secs) => {
          const t = activityTimeMs(time);
          const n = toNumber(secs);
          return t === null || n === null ? EMPTY : isoFromMs(t + sign * Math.round(n * 1000));
        }),
      );
  }
  // The schema requires one source; unreachable.
  return () => EMPTY;
}

function firstPresent(fns: readonly ValueFn[], s: Scope, from: number): MaybeP<unknown> {
  for (let i = from; i < fns.length; i++) {
    const fn = fns[i];
    if (!fn) continue;
    const r = fn(s);
    if (r instanceof Promise) return r.then((v) => (clean(v) !== null ? v : firstPresent(fns, s, i + 1)));
    if (clean(r) !== null) return r;
  }
  return EMPTY;
}

type Step = (v: unknown) => unknown;

/** The transforms of one value, in the documented order, fused into one function. */
function compileSteps(v: ValueObjectInput, at: YamlPath, env: CompileEnv): Step | null {
  const steps: Step[] = [];
  if (v.nullIf !== undefined) {
    const xs = v.nullIf;
    steps.push((x) => (xs.some((n) => looseEquals(x, n)) ? EMPTY : x));
  }
  if (v.replace !== undefined) {
    const re = compileRegex(v.replace.pattern, 'g', [...at, 'replace', 'pattern'], env);
    const by = v.replace.with;
    steps.push((x) => (typeof x === 'string' ? clean(x.replace(re, by)) : x));
  }
  if (v.case !== undefined) {
    const upper = v.case === 'upper';
    steps.push((x) => (typeof x === 'string' ? (upper ? x.toUpperCase() : x.toLowerCase()) : x));
  }
  const conversion = compileConversion(v, at, env);
  if (conversion) steps.push(conversion);
  if (v.truncate !== undefined) {
    const n = v.truncate;
    steps.push((x) => (typeof x === 'string' ? truncate(x, n) : x));
  }
  if (v.default !== undefined) {
    const d = v.default;
    steps.push((x) => (x === null ? (d !== null && typeof d === 'object' ? structuredClone(d) : d) : x));
  }
  if (steps.length === 0) return null;
  if (steps.length === 1) return steps[0] ?? null;
  return (x) => {
    let cur = x;
    for (const st of steps) cur = st(cur);
    return cur;
  };
}

function compileConversion(v: ValueObjectInput, at: YamlPath, env: CompileEnv): Step | null {
  if (v.time !== undefined) {
    const fmt = v.time;
    const zone = resolveZone(v.zone, [...at, 'zone'], env);
    return (x) => {
      const ms = toEpochMs(x, fmt, zone);
      return ms === null ? EMPTY : isoFromMs(ms);
    };
  }
  if (v.date !== undefined) {
    const zone = resolveZone(v.zone, [...at, 'zone'], env);
    return (x) => toDate(x, zone);
  }
  if (v.duration !== undefined) {
    const from = typeof v.duration === 'string' ? v.duration : v.duration.from;
    const to = typeof v.duration === 'string' ? 's' : v.duration.to;
    return (x) => convertDuration(x, from, to);
  }
  if (v.phone !== undefined) {
    let region = env.phoneRegion;
    if (typeof v.phone === 'string') {
      if (isPhoneRegion(v.phone)) region = v.phone;
      else fail(env, [...at, 'phone'], `"${v.phone}" is not a phone region libphonenumber knows`);
    }
    return (x) => toPhone(x, region);
  }
  if (v.table !== undefined) {
    const table = resolveTable(v.table, [...at, 'table'], env);
    const raw = v.fallback === undefined || v.fallback === 'raw';
    return (x) => {
      if (x === null) return EMPTY;
      const k = tableKey(x);
      const hit = k === null ? undefined : table.get(k);
      return hit !== undefined ? hit : raw ? x : EMPTY;
    };
  }
  if (v.number !== undefined) return toNumber;
  if (v.string !== undefined) return toText;
  if (v.boolean !== undefined) return toBoolean;
  if (v.email !== undefined) return toEmail;
  return null;
}
