import { andThen, clean, compileRegex, fail, type CompileEnv, type CondFn, type MaybeP, type Scope } from './compile-env';
import { compileJsonata } from './compile-jsonata';
import { compilePath } from './compile-path';
import type { ConditionInput } from './file-inputs';
import { looseEquals, toNumber, toText } from './transforms';
import { suggest, type YamlPath } from './yaml-file';

/** Conditions (event, path tests, all/any/not, named `is`, JSONata) compiled to predicates. */

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
