/**
 * Paths into a payload or the activity: `data.taskId`, `CallbackAttempts[0].Note`,
 * `CallbackAttempts[-1]` (the last item), and event metadata with `@`:
 * `@eventType`, `@headers.etag`. Parsed once at load into segments.
 */

export type Segment = string | number;

export interface ParsedPath {
  /** The `@name` root, when the path reads event metadata. */
  meta: string | null;
  segments: Segment[];
}

const NAME = /^[^.[\]@]+/;
const INDEX = /^\[(-?\d+)\]/;

export function parsePath(text: string): ParsedPath | { error: string } {
  let rest = text.trim();
  let meta: string | null = null;
  let expectName = true;
  if (rest.startsWith('@')) {
    const m = /^@([A-Za-z]+)/.exec(rest);
    if (!m?.[1]) return { error: `"${text}" is not a path: @ must be followed by a name such as @eventType` };
    meta = m[1];
    rest = rest.slice(m[0].length);
    if (rest.startsWith('.')) rest = rest.slice(1);
    else if (rest !== '' && !rest.startsWith('[')) return { error: `"${text}" is not a path` };
    else expectName = false;
  }
  const segments: Segment[] = [];
  while (rest !== '') {
    if (expectName) {
      const m = NAME.exec(rest);
      if (!m) return { error: `"${text}" is not a path: expected a name at "${rest}"` };
      segments.push(m[0].trim());
      rest = rest.slice(m[0].length);
    }
    let idx = INDEX.exec(rest);
    while (idx) {
      segments.push(Number(idx[1]));
      rest = rest.slice(idx[0].length);
      idx = INDEX.exec(rest);
    }
    if (rest === '') break;
    if (!rest.startsWith('.')) return { error: `"${text}" is not a path: unexpected "${rest}"` };
    rest = rest.slice(1);
    expectName = true;
  }
  if (meta === null && segments.length === 0) return { error: 'a path must not be empty' };
  return { meta, segments };
}

/** The value at `segments` below `root`, or null when any step is missing. */
export function getAt(root: unknown, segments: readonly Segment[]): unknown {
  let cur: unknown = root;
  for (const s of segments) {
    if (cur === null || cur === undefined) return null;
    if (typeof s === 'number') {
      if (!Array.isArray(cur)) return null;
      cur = cur[s < 0 ? cur.length + s : s];
    } else {
      if (typeof cur !== 'object' || Array.isArray(cur)) return null;
      cur = (cur as Record<string, unknown>)[s];
    }
  }
  return cur === undefined ? null : cur;
}
