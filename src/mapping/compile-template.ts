import { clean, fail, type CompileEnv, type Scope } from './compile-env';
import { compilePath } from './compile-path';
import { TEMPLATE_FILTERS } from './language-terms';
import { toText } from './transforms';
import { suggest, type YamlPath } from './yaml-file';

/** Text templates (`{path|filter}`, `{a ?? b}`) compiled to renderers. */

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
