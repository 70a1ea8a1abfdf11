import type { CountryCode } from 'libphonenumber-js';
import type { MappingFileError } from './file-errors';
import type { ConditionInput } from './file-inputs';
import type { Scalar } from './language-terms';
import type { StoredEvent } from '../core/event';
import type { YamlFile, YamlPath } from './yaml-file';

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
  /**
   * What `zone: $<name>` may name in this file, with the IANA zone each name
   * stands for: a source file gets its own source's setting (the adapter's
   * timeZone), a CRM file, which serves every source, gets them all.
   */
  zones: ReadonlyMap<string, string>;
  /**
   * Event scope: the headers intake stores for this source (its adapter's
   * keptHeaders); `@headers.<name>` for any other is an error, since it
   * would read nothing in production. Null: not checked.
   */
  keptHeaders: ReadonlySet<string> | null;
}

/** Reports a problem at a place in the file; compiling goes on, so every problem is reported at once. */
export function fail(env: CompileEnv, at: YamlPath, message: string, key = false): void {
  env.errors.push(env.yaml.error(at, message, { key }));
}

export function location(env: CompileEnv, at: YamlPath): { file: string; line: number } {
  const e = env.yaml.error(at, '');
  return { file: e.file, line: e.line };
}

/** Empty text counts as missing everywhere: vendors send "" for "no value". */
export function clean(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'string' && v.trim() === '') return null;
  return v;
}

export function compileRegex(pattern: string, flags: string, at: YamlPath, env: CompileEnv): RegExp {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    fail(env, at, `not a valid regular expression: ${(err as Error).message}`);
    return /$^/;
  }
}
