import type { ValueInput, ValueObjectInput } from './file-inputs';
import { andThen, clean, compileRegex, fail, type CompileEnv, type MaybeP, type Scope, type Table, type ValueFn } from './compile-env';
import { compileCondition } from './compile-condition';
import { compileJsonata } from './compile-jsonata';
import { compilePath } from './compile-path';
import { compileTemplate } from './compile-template';
import { convertDuration, looseEquals, tableKey, toBoolean, toEmail, toNumber, toText, truncate } from './transforms';
import { isPhoneRegion, toPhone } from '../core/phone';
import { activityTimeMs, isoFromMs, isValidZone, toDate, toEpochMs } from '../core/time';
import { suggest, where, type YamlPath } from './yaml-file';

/** Value specs (a source, then the transforms in their documented order) compiled to functions. */

const EMPTY = null;

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
    if (fmt === 'local' && v.zone === undefined) {
      // Checked here, not in the schema: which settings a zone can name depends on the file's source.
      const settings = [...env.zones.keys()].map((n) => `, or $${n}`).join('');
      fail(env, [...at, 'time'], `${where([...at, 'time'])}time: local needs a zone (an IANA name such as America/Chicago${settings})`, true);
    }
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

// ---------------------------------------------------------------------------
// Zones and tables

function resolveZone(zone: string | undefined, at: YamlPath, env: CompileEnv): string {
  if (zone === undefined || zone === 'UTC') return 'UTC';
  if (zone.startsWith('$')) {
    const named = env.zones.get(zone.slice(1));
    if (named !== undefined) return named;
    const names = [...env.zones.keys()].map((n) => `$${n}`);
    const known =
      names.length === 0
        ? `${env.source ?? 'this file'} has no zone setting, so name an IANA zone (e.g. America/Chicago)`
        : names.length === 1
          ? `the one a zone can name is ${names[0]}`
          : `the ones a zone can name are ${names.join(', ')}`;
    fail(env, at, `unknown setting ${zone}; ${known}`);
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
