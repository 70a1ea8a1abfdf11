import { createHash } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import type { CrmKind } from '../core/crm-record';
import type { MappingFileError } from './file-errors';
import type { CrmFileInput, SourceFileInput, TablesFileInput } from './file-inputs';
import { crmFileSchema, sourceFileSchema, tablesFileSchema } from './file-schemas';
import { CRM_KINDS } from '../core/crm-record';
import { YamlFile } from './yaml-file';

/**
 * The files of a mappings dir, read, parsed and checked against their
 * schemas, not yet compiled. `errors` holds every problem found so far;
 * `fingerprint` identifies what was read (see LoadResult).
 */
export interface MappingFiles {
  parsed: Map<string, YamlFile>;
  sources: Map<SourceName, { yaml: YamlFile; input: SourceFileInput }>;
  crms: Map<CrmKind, { yaml: YamlFile; input: CrmFileInput }>;
  tableFiles: Map<string, { yaml: YamlFile; input: TablesFileInput }>;
  errors: MappingFileError[];
  fingerprint: string;
}

const YAML_FILE = /\.ya?ml$/;

/** Reads every mapping file under `dir`; `{ error }` when the dir itself is not there. */
export async function readMappingFiles(dir: string): Promise<MappingFiles | { error: MappingFileError }> {
  const errors: MappingFileError[] = [];
  const listing = await listMappingFiles(dir);
  if ('error' in listing) return listing;

  const hash = createHash('sha256');
  for (const rel of listing.unknownFiles) hash.update(`unknown\0${rel}\0`);
  const parsed = new Map<string, YamlFile>();
  for (const rel of listing.files) {
    const file = path.join(dir, rel);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      hash.update(`unreadable\0${rel}\0${code}\0`);
      errors.push({ file, line: 0, column: 0, message: `could not be read (${code})` });
      continue;
    }
    hash.update(`${rel}\0${text.length}\0${text}\0`);
    const result = YamlFile.parse(file, rel, text);
    if (result.ok) parsed.set(rel, result.file);
    else errors.push(...result.errors);
  }

  const sources = new Map<SourceName, { yaml: YamlFile; input: SourceFileInput }>();
  const crms = new Map<CrmKind, { yaml: YamlFile; input: CrmFileInput }>();
  const tableFiles = new Map<string, { yaml: YamlFile; input: TablesFileInput }>();

  for (const [rel, yaml] of parsed) {
    const dirName = path.posix.dirname(rel);
    const base = path.posix.basename(rel).replace(YAML_FILE, '');
    if (dirName === 'tables') {
      const r = tablesFileSchema.safeParse(yaml.data ?? {});
      if (r.success) tableFiles.set(base, { yaml, input: r.data });
      else errors.push(...yaml.zodErrors(r.error.issues));
    } else if (dirName === 'crm') {
      const r = crmFileSchema.safeParse(yaml.data);
      if (!r.success) {
        errors.push(...yaml.zodErrors(r.error.issues));
      } else if (r.data.crm !== base) {
        errors.push(yaml.error(['crm'], `crm is "${r.data.crm}" but the file is named ${base}.yaml; name it ${r.data.crm}.yaml`));
      } else {
        crms.set(r.data.crm, { yaml, input: r.data });
      }
    } else {
      const r = sourceFileSchema.safeParse(yaml.data);
      if (!r.success) {
        errors.push(...yaml.zodErrors(r.error.issues));
      } else if (r.data.source !== base) {
        errors.push(yaml.error(['source'], `source is "${r.data.source}" but the file is named ${base}.yaml; name it ${r.data.source}.yaml`));
      } else if (!(SOURCE_NAMES as readonly string[]).includes(base)) {
        errors.push(yaml.error(['source'], `"${base}" is not a source; the sources are ${SOURCE_NAMES.join(', ')}`));
      } else {
        sources.set(base as SourceName, { yaml, input: r.data });
      }
    }
  }

  for (const rel of listing.unknownFiles) {
    errors.push({ file: path.join(dir, rel), line: 0, column: 0, message: unknownFileMessage(rel) });
  }
  if (errors.length === 0) {
    for (const s of SOURCE_NAMES) {
      if (!parsed.has(`${s}.yaml`) && !parsed.has(`${s}.yml`)) {
        errors.push({ file: path.join(dir, `${s}.yaml`), line: 0, column: 0, message: 'is missing: every source needs a mapping file' });
      }
    }
    for (const c of CRM_KINDS) {
      if (!crms.has(c)) errors.push({ file: path.join(dir, 'crm', `${c}.yaml`), line: 0, column: 0, message: 'is missing: every CRM needs a mapping file' });
    }
  }
  const fingerprint = hash.digest('hex');
  return { parsed, sources, crms, tableFiles, errors, fingerprint };
}

function unknownFileMessage(rel: string): string {
  const dir = path.posix.dirname(rel);
  if (dir === 'crm') return `is not a CRM mapping: the files here are ${CRM_KINDS.map((c) => `${c}.yaml`).join(' and ')}`;
  return `is not a source mapping: name it after a source (${SOURCE_NAMES.join(', ')})`;
}

/**
 * What an entry of the mappings dir is, following symlinks: a Kubernetes
 * ConfigMap mount is all symlinks (hcc.yaml -> ..data/hcc.yaml, crm ->
 * ..data/crm, ..data -> ..2026_01_31_12_00_00.1234), and so is a mappings
 * dir linked from a shared checkout. A dangling link reads as a file, so the
 * read reports it instead of the file silently counting as missing.
 */
async function entryKind(dir: string, entry: Dirent): Promise<'file' | 'dir' | 'other'> {
  if (entry.isFile()) return 'file';
  if (entry.isDirectory()) return 'dir';
  if (!entry.isSymbolicLink()) return 'other';
  try {
    const target = await stat(path.join(dir, entry.name));
    return target.isFile() ? 'file' : target.isDirectory() ? 'dir' : 'other';
  } catch {
    return 'file';
  }
}

/**
 * Names the loader never reads: dot files (ConfigMap internals such as
 * ..data and ..2026_…, editor lock files such as .#hcc.yaml).
 */
function isHidden(name: string): boolean {
  return name.startsWith('.');
}

async function sortedEntries(dir: string): Promise<Dirent[]> {
  return (await readdir(dir, { withFileTypes: true })).filter((e) => !isHidden(e.name)).sort((a, b) => (a.name < b.name ? -1 : 1));
}

/** The YAML files the loader reads, relative to dir, with forward slashes. */
async function listMappingFiles(dir: string): Promise<{ files: string[]; unknownFiles: string[] } | { error: MappingFileError }> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) return { error: { file: dir, line: 0, column: 0, message: 'is not a directory (MAPPINGS_DIR)' } };
  } catch {
    return { error: { file: dir, line: 0, column: 0, message: 'does not exist (MAPPINGS_DIR)' } };
  }
  const files: string[] = [];
  const unknownFiles: string[] = [];
  for (const entry of await sortedEntries(dir)) {
    const kind = await entryKind(dir, entry);
    if (kind === 'file' && YAML_FILE.test(entry.name)) {
      const base = entry.name.replace(YAML_FILE, '');
      if ((SOURCE_NAMES as readonly string[]).includes(base)) files.push(entry.name);
      else unknownFiles.push(entry.name);
    } else if (kind === 'dir' && (entry.name === 'crm' || entry.name === 'tables')) {
      const sub = path.join(dir, entry.name);
      for (const child of await sortedEntries(sub)) {
        if (!YAML_FILE.test(child.name) || (await entryKind(sub, child)) !== 'file') continue;
        const rel = `${entry.name}/${child.name}`;
        if (entry.name === 'crm' && !(CRM_KINDS as readonly string[]).includes(child.name.replace(YAML_FILE, ''))) unknownFiles.push(rel);
        else files.push(rel);
      }
    }
  }
  return { files, unknownFiles };
}
