/**
 * Text as Postgres takes it: array literals for unnest() parameters, and
 * the repairs jsonb needs (no U+0000, no lone surrogate, no leading BOM).
 * Intake sends bodies through these, completion the CRM's answers.
 */

/**
 * Whether Postgres could not take raw_body::jsonb as it is: a leading BOM
 * (valid for a vendor, refused by the jsonb parser), or a \u escape that
 * could be a NUL or a lone surrogate (cheaper to repair than to inspect).
 */
export function needsJsonbRepair(rawBody: string): boolean {
  return rawBody.charCodeAt(0) === 0xfeff || rawBody.includes('\\u');
}

/** A Postgres array literal of ids ('{1,2,3}'), for `= ANY($n::bigint[])`. */
export function pgIdArray(ids: readonly number[]): string {
  return `{${ids.join(',')}}`;
}

/**
 * A Postgres array literal of text: each element double-quoted with quotes
 * and backslashes escaped, NULL for null. Parsed by array_in, far cheaper
 * than JSON for the server.
 */
export function pgTextArray(values: ReadonlyArray<string | null>): string {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    if (i > 0) out += ',';
    const v = values[i];
    // Two plain replaceAll passes are about twice as fast as one regex here.
    out += v === null || v === undefined ? 'NULL' : `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  }
  return `${out}}`;
}

/** A string Postgres text can hold: U+0000 and lone surrogates become U+FFFD. */
export function storableText(value: string): string {
  return value.replace(/\u0000/g, '\uFFFD').toWellFormed();
}

/**
 * Postgres jsonb cannot hold U+0000 and refuses lone UTF-16 surrogates, yet
 * both are valid JSON (as the escapes \u0000, \ud800), and a leading BOM is
 * valid for a vendor but not for the jsonb parser. This rewrites the body
 * text (raw_body keeps the original) so raw::jsonb accepts it: the BOM goes,
 * and those escapes become \ufffd. Working on the text keeps it linear in
 * the body's size, whatever its nesting depth. An escape only counts after
 * an odd number of backslashes (`\\u0000` is a backslash and "u0000").
 */
export function repairJsonText(raw: string): string {
  const text = raw.charCodeAt(0) === 0xfeff ? raw.slice(1) : raw;
  let out = '';
  let last = 0;
  let pendingHigh: { start: number; end: number } | undefined;
  const flushHigh = (paired: boolean) => {
    if (!pendingHigh) return;
    out += text.slice(last, pendingHigh.start) + (paired ? text.slice(pendingHigh.start, pendingHigh.end) : REPLACEMENT_ESCAPE);
    last = pendingHigh.end;
    pendingHigh = undefined;
  };
  // The body is valid JSON (it was parsed already), so escapes can be read
  // left to right; `\\` is one escape, which keeps `\\u0000` literal text.
  for (const m of text.matchAll(JSON_ESCAPE)) {
    const start = m.index;
    const end = start + m[0].length;
    const code = m[1] === undefined ? -1 : parseInt(m[1], 16);
    const isLow = code >= 0xdc00 && code <= 0xdfff;
    if (pendingHigh) {
      const paired = isLow && start === pendingHigh.end;
      flushHigh(paired);
      if (paired) continue;
    }
    if (code === 0 || isLow) {
      out += text.slice(last, start) + REPLACEMENT_ESCAPE;
      last = end;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      pendingHigh = { start, end };
    }
  }
  flushHigh(false);
  return out + text.slice(last);
}

const JSON_ESCAPE = /\\(?:u([0-9a-fA-F]{4})|[^u])/g;
const REPLACEMENT_ESCAPE = '\\ufffd';
