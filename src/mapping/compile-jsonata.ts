import jsonata from 'jsonata';
import { fail, location, type CompileEnv, type Scope } from './compile-env';
import { MappingError } from '../core/errors';
import type { StoredEvent } from '../core/event';
import type { YamlPath } from './yaml-file';

/** The JSONata escape hatch: compiled at load, evaluated (async) with the event bound as $event. */

const EMPTY = null;

export function compileJsonata(text: string, at: YamlPath, env: CompileEnv): (scope: Scope) => Promise<unknown> {
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
