import { cp, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log';
import { formatMappingErrors } from './file-errors';
import { MappingStore } from './mapping-store';
import { loadMappings } from './load-mappings';
import { copyMappings, readFixture, SHIPPED_DIR } from '../../test/support/mappings';
import { syntheticEvents } from '../intake/synthetic-events';

/** Log lines the store wrote, parsed. */
function captureLogs(): { logger: ReturnType<typeof createLogger>; lines: { level: string; msg: string }[] } {
  const lines: { level: string; msg: string }[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { level: string; msg: string });
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), lines };
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup) await c();
  cleanup = [];
});

async function subjectOf(store: MappingStore): Promise<unknown> {
  const body = (await readFixture('hcc/call-saved.json')) as Record<string, unknown>;
  const events = syntheticEvents('hcc', [{ payload: body, eventType: 'call-saved' }], { timeZones: { hcc: 'UTC' } });
  const set = store.current();
  const activity = await set.fold('hcc', '11142', events);
  return (await set.toCrm(activity, 'salesforce'))[0]?.fields.Subject;
}

describe('MappingStore', () => {
  it('reloads on a file change, keeps the last good mappings on a bad edit and logs why', async () => {
    const m = await copyMappings();
    cleanup.push(m.remove);
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger, debounceMs: 30 });
    if (!opened.ok) throw new Error(JSON.stringify(opened.errors));
    const store = opened.store;
    cleanup.push(() => store.stop());
    store.start();
    expect(await subjectOf(store)).toBe('Outbound call – Sale');

    // A RevOps edit: a new Subject template.
    await m.edit('crm/salesforce.yaml', 'template: "{direction|capitalize|or:Phone} call{dispositionLabel|prefix: – }"', 'template: "Call: {dispositionLabel}"');
    await until(() => lines.some((l) => l.msg === 'mappings reloaded'));
    expect(await subjectOf(store)).toBe('Call: Sale');

    // A bad edit: rejected, the previous (good) mappings stay in use.
    const good = store.current();
    await m.edit('crm/salesforce.yaml', 'template: "Call: {dispositionLabel}"', 'template: "Call: {dispositionLabl}"');
    await until(() => lines.some((l) => l.level === 'error'));
    expect(store.current()).toBe(good);
    expect(await subjectOf(store)).toBe('Call: Sale');
    const text = await m.read('crm/salesforce.yaml');
    const line = text.slice(0, text.indexOf('"Call: {dispositionLabl}"')).split('\n').length;
    const column = text.split('\n')[line - 1]?.indexOf('"Call') ?? -1;
    const error = lines.find((l) => l.level === 'error');
    expect(error?.msg).toMatch(/^mapping files rejected; keeping the last good mappings \(loaded .+\):\n/);
    expect(error?.msg.split('\n').slice(1)).toEqual([
      `${m.file('crm/salesforce.yaml')}:${line}:${column + 1} "dispositionLabl" is not an activity field (did you mean "dispositionLabel"?)`,
    ]);
    expect(store.status().lastErrors).toHaveLength(1);

    // Fixed: reloaded again.
    await m.edit('crm/salesforce.yaml', '{dispositionLabl}', '{dispositionLabel}!');
    await until(() => lines.filter((l) => l.msg === 'mappings reloaded').length === 2);
    expect(await subjectOf(store)).toBe('Call: Sale!');
    expect(store.status().lastErrors).toEqual([]);
  });

  it('refuses to open with invalid mappings and answers the errors', async () => {
    const m = await copyMappings();
    cleanup.push(m.remove);
    await m.edit('hcc.yaml', 'source: hcc', 'source: hcc\nsource: hcc');
    const { logger } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger });
    const line = (await m.read('hcc.yaml')).split('\n').lastIndexOf('source: hcc') + 1;
    expect(opened.ok ? [] : opened.errors).toEqual([{ file: m.file('hcc.yaml'), line, column: 1, message: 'this key appears twice in the same map' }]);
  });

  it('refuses start-up on an invalid file with the exact file:line:col lines main prints, and logs nothing as loaded', async () => {
    // main() opens the store with MappingStore.open and, on { ok: false }, prints
    // formatMappingErrors(errors) under "Invalid mapping files:" and exits 1.
    const m = await copyMappings();
    cleanup.push(m.remove);
    await m.edit('crm/hubspot.yaml', 'table: hubspot.call_outcomes,', 'table: hubspot.call_outcome,');
    await m.edit('webex-cc.yaml', '    - { is: rona }', '    - { is: ronna }');
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger });
    expect(opened.ok).toBe(false);
    const at = async (rel: string, needle: string) => {
      const text = (await m.read(rel)).split('\n');
      const line = text.findIndex((l) => l.includes(needle));
      return `${m.file(rel)}:${line + 1}:${(text[line]?.indexOf(needle) ?? 0) + 1}`;
    };
    expect(formatMappingErrors(opened.ok ? [] : opened.errors).split('\n')).toEqual([
      `${await at('crm/hubspot.yaml', 'hubspot.call_outcome,')} unknown table "hubspot.call_outcome" (did you mean "hubspot.call_outcomes"?)`,
      `${await at('webex-cc.yaml', 'ronna')} unknown condition "ronna" (did you mean "rona"?); name it under conditions:`,
    ]);
    expect(lines.filter((l) => l.msg === 'mappings loaded')).toEqual([]);
  });

  it('runs one reload at a time and one more for changes made during it', async () => {
    const m = await copyMappings();
    cleanup.push(m.remove);
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger });
    if (!opened.ok) throw new Error('invalid');
    const store = opened.store;
    const results = await Promise.all([store.reload(), store.reload(), store.reload()]);
    expect(results).toEqual([true, true, true]);
    await until(() => lines.filter((l) => l.msg === 'mappings reloaded').length === 2);
    await store.stop();
    expect(lines.filter((l) => l.msg === 'mappings reloaded')).toHaveLength(2);
  });
});

/**
 * A Kubernetes ConfigMap volume, as the kubelet lays it out: the files live
 * in a timestamped dir, ..data points at it, and every visible name is a
 * symlink through ..data. An update writes a new timestamped dir and swaps
 * ..data atomically (a rename over it); the visible symlinks never change.
 */
async function configMapMount(): Promise<{
  dir: string;
  update: (edit: (rel: string, text: string) => string) => Promise<void>;
  /** The kubelet deletes the previous dir after the swap; kept apart so a test can show the swap alone reloads. */
  removeStale: () => Promise<void>;
  remove: () => Promise<void>;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'callsync-configmap-'));
  let generation = 0;
  const writeGeneration = async (edit: (rel: string, text: string) => string): Promise<string> => {
    generation += 1;
    const name = `..2026_01_31_12_00_0${generation}.100${generation}`;
    const target = path.join(dir, name);
    await cp(SHIPPED_DIR, target, { recursive: true });
    for (const entry of await readdir(target, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      const file = path.join(entry.parentPath, entry.name);
      const rel = path.relative(target, file).split(path.sep).join('/');
      const text = await readFile(file, 'utf8');
      const edited = edit(rel, text);
      if (edited !== text) await writeFile(file, edited);
    }
    return name;
  };
  const first = await writeGeneration((_rel, text) => text);
  await symlink(first, path.join(dir, '..data'));
  for (const name of await readdir(path.join(dir, first))) await symlink(path.join('..data', name), path.join(dir, name));
  let current = first;
  const stale: string[] = [];
  return {
    dir,
    async update(edit) {
      const next = await writeGeneration(edit);
      // The kubelet writes the new dir first; the swap comes later. Waiting
      // past the store's debounce proves the swap itself triggers the reload.
      await new Promise((r) => setTimeout(r, 250));
      await symlink(next, path.join(dir, '..data_tmp'));
      await rename(path.join(dir, '..data_tmp'), path.join(dir, '..data'));
      stale.push(current);
      current = next;
    },
    async removeStale() {
      for (const name of stale.splice(0)) await rm(path.join(dir, name), { recursive: true, force: true });
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

describe('mappings mounted from a Kubernetes ConfigMap (symlinks)', () => {
  it('loads files and dirs that are symlinks, and skips the ..data internals', async () => {
    const mount = await configMapMount();
    cleanup.push(mount.remove);
    const loaded = await loadMappings({ dir: mount.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
    expect(loaded.ok ? loaded.files.map((f) => path.relative(mount.dir, f)) : loaded.errors).toEqual([
      'crm/hubspot.yaml',
      'crm/salesforce.yaml',
      'enreach.yaml',
      'genesys-ocs.yaml',
      'hcc.yaml',
      'tables/agents.yaml',
      'tables/genesys.yaml',
      'tables/hubspot.yaml',
      'ucontact.yaml',
      'webex-cc.yaml',
    ]);
  });

  it('reports a dangling symlink as unreadable instead of missing', async () => {
    const mount = await configMapMount();
    cleanup.push(mount.remove);
    await rm(path.join(mount.dir, 'hcc.yaml'));
    await symlink('..data/nowhere.yaml', path.join(mount.dir, 'hcc.yaml'));
    const loaded = await loadMappings({ dir: mount.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
    expect(loaded.ok ? [] : loaded.errors).toEqual([{ file: path.join(mount.dir, 'hcc.yaml'), line: 0, column: 0, message: 'could not be read (ENOENT)' }]);
  });

  it('reloads when the ConfigMap is updated (..data swapped), and not when nothing changed', async () => {
    const mount = await configMapMount();
    cleanup.push(mount.remove);
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: mount.dir, defaultRegion: 'US', timeZones: { hcc: 'UTC' }, logger, debounceMs: 30 });
    if (!opened.ok) throw new Error(JSON.stringify(opened.errors));
    const store = opened.store;
    cleanup.push(() => store.stop());
    store.start();
    expect(await subjectOf(store)).toBe('Outbound call – Sale');

    const subject = 'template: "{direction|capitalize|or:Phone} call{dispositionLabel|prefix: – }"';
    await mount.update((rel, text) => (rel === 'crm/salesforce.yaml' ? text.replace(subject, 'template: "ConfigMap: {dispositionLabel}"') : text));
    await until(() => lines.some((l) => l.msg === 'mappings reloaded'));
    expect(await subjectOf(store)).toBe('ConfigMap: Sale');
    await mount.removeStale();

    // The same content again (kubelet re-projects unchanged data after a resync): no reload.
    const good = store.current();
    await mount.update((rel, text) => (rel === 'crm/salesforce.yaml' ? text.replace(subject, 'template: "ConfigMap: {dispositionLabel}"') : text));
    await mount.removeStale();
    await new Promise((r) => setTimeout(r, 300));
    expect(store.current()).toBe(good);
    expect(lines.filter((l) => l.msg === 'mappings reloaded')).toHaveLength(1);
  });
});
