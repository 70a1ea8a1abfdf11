import { EVENT_META, ACTIVITY_READABLE, CALLBACK_FIELDS } from './language-terms';
import { getAt, parsePath, type Segment } from './paths';
import { fail, type CompileEnv, type Scope } from './compile-env';
import type { StoredEvent } from '../core/event';
import { suggest, type YamlPath } from './yaml-file';

/** Paths compiled to getters: a payload path, `@meta` of the event, or an activity field. */

const EMPTY = null;

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
