import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { z } from 'zod';
import { dedupeErrors, type MappingFileError } from './file-errors';
import { KNOWN_KEYS } from './file-schemas';

export type YamlPath = readonly (string | number)[];

/** A parsed mapping file: its data plus what is needed to point at any node of it. */
export class YamlFile {
  private constructor(
    /** As shown in errors (dir joined with rel). */
    readonly file: string,
    /** Relative to the mappings dir, with forward slashes (e.g. tables/genesys.yaml). */
    readonly rel: string,
    readonly data: unknown,
    private readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  static parse(file: string, rel: string, text: string): { ok: true; file: YamlFile } | { ok: false; errors: MappingFileError[] } {
    const lines = new LineCounter();
    // uniqueKeys (the default) makes a repeated key an error instead of a silent overwrite.
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, merge: true });
    if (doc.errors.length > 0) {
      return {
        ok: false,
        errors: doc.errors.map((e) => {
          const pos = lines.linePos(e.pos[0]);
          return { file, line: pos.line, column: pos.col, message: yamlMessage(e.code, e.message) };
        }),
      };
    }
    return { ok: true, file: new YamlFile(file, rel, doc.toJS({ maxAliasCount: 1000 }) as unknown, doc, lines) };
  }

  /** The error for the node at `path` (or its nearest existing ancestor); `key` points at the key itself. */
  error(path: YamlPath, message: string, options: { key?: boolean } = {}): MappingFileError {
    const offset = this.offsetOf(path, options.key ?? false);
    const pos = this.lines.linePos(offset);
    return { file: this.file, line: pos.line, column: pos.col, message };
  }

  /** zod issues as file errors, with messages written for the person editing the YAML. */
  zodErrors(issues: readonly z.core.$ZodIssue[]): MappingFileError[] {
    const out: MappingFileError[] = [];
    for (const issue of flattenUnions(issues)) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const hint = suggest(key, KNOWN_KEYS);
          out.push(this.error([...issue.path.map(segment), key], `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`, { key: true }));
        }
        continue;
      }
      const path = issue.path.map(segment);
      // Our own checks are about a key being there (or missing), so point at the key;
      // type and value errors point at the value.
      const key = issue.code === 'custom' && typeof path[path.length - 1] === 'string';
      out.push(this.error(path, `${where(path)}${issueMessage(issue, valueAt(this.data, path))}`, { key }));
    }
    return dedupeErrors(out);
  }

  private offsetOf(path: YamlPath, key: boolean): number {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && scalarKey(p.key) === String(segment));
        if (!pair) return offset;
        const keyStart = rangeStart(pair.key);
        if (last && key) return keyStart ?? offset;
        const valueStart = rangeStart(pair.value);
        // `key:` with nothing after it: point at the key.
        if (valueStart === undefined) return keyStart ?? offset;
        node = pair.value;
        offset = valueStart;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item: unknown = node.items[segment];
        const start = rangeStart(item);
        if (start === undefined) return offset;
        node = item;
        offset = start;
      } else {
        return offset;
      }
    }
    return offset;
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node) {
    const range = (node as Node).range;
    if (range) return range[0];
  }
  return undefined;
}

function scalarKey(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

function segment(s: PropertyKey): string | number {
  return typeof s === 'number' ? s : String(s);
}

/** `callback.dueAt.time: `, the prefix of a message about a place in the file. */
export function where(path: YamlPath): string {
  return path.length === 0 ? '' : `${path.map((p) => (typeof p === 'number' ? `[${p}]` : p)).join('.').replace(/\.\[/g, '[')}: `;
}

function valueAt(data: unknown, path: YamlPath): unknown {
  let cur = data;
  for (const s of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[s];
  }
  return cur;
}

function typeName(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return `the text "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return `${typeof value === 'number' ? 'the number' : 'the value'} ${String(value)}`;
}

const EXPECTED: Record<string, string> = {
  string: 'a text',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a map',
  null: 'null',
};

function issueMessage(issue: z.core.$ZodIssue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (value === undefined) return 'is required';
      return `expected ${EXPECTED[issue.expected] ?? issue.expected}, got ${typeName(value)}`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => String(v)).join(', ')} (got ${typeName(value)})`;
    case 'too_small':
      return issue.message.startsWith('Too small') ? `is too small (minimum ${String(issue.minimum)})` : issue.message;
    case 'too_big':
      return issue.message.startsWith('Too big') ? `is too big (maximum ${String(issue.maximum)})` : issue.message;
    case 'invalid_union':
      return `is not valid here (got ${typeName(value)})`;
    default:
      return issue.message;
  }
}

/**
 * A union error lists every branch's complaints. The branch that got past the
 * type check (e.g. the map form of a value, when a map was written) is the
 * one the author meant: report its issues, with the union's path in front.
 */
function flattenUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const issue of issues) {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) {
      out.push(issue);
      continue;
    }
    const branches = issue.errors.map((branch) => flattenUnions(branch));
    const meant = branches.filter((b) => !b.every((i) => i.code === 'invalid_type' && i.path.length === 0));
    if (meant.length === 0) {
      out.push(issue);
      continue;
    }
    const best = meant.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    for (const inner of best) out.push({ ...inner, path: [...issue.path, ...inner.path] });
  }
  return out;
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(...issues.map((i) => i.path.length));
}

function yamlMessage(code: string, message: string): string {
  if (code === 'DUPLICATE_KEY') return 'this key appears twice in the same map';
  // The yaml package's messages are clear; drop the code-frame it may append.
  return `YAML: ${message.split('\n')[0] ?? message}`;
}

/** The closest known name within edit distance 2, for "did you mean". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0] ?? 0;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j] ?? 0;
      prev[j] = Math.min(up + 1, (prev[j - 1] ?? 0) + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length] ?? 0;
}
