import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../log';
import { MappingStore } from './store';
import { copyMappings, readFixture } from './test-support';
import { syntheticEvents } from './synthetic';

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
  const events = syntheticEvents('hcc', [{ payload: body, eventType: 'call-saved' }], { hccTimezone: 'UTC' });
  const set = store.current();
  const activity = await set.fold('hcc', '11142', events);
  return (await set.toCrm(activity, 'salesforce'))[0]?.fields.Subject;
}

describe('MappingStore', () => {
  it('reloads on a file change, keeps the last good mappings on a bad edit and logs why', async () => {
    const m = await copyMappings();
    cleanup.push(m.remove);
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', hccTimezone: 'UTC', logger, debounceMs: 30 });
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
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', hccTimezone: 'UTC', logger });
    const line = (await m.read('hcc.yaml')).split('\n').lastIndexOf('source: hcc') + 1;
    expect(opened.ok ? [] : opened.errors).toEqual([{ file: m.file('hcc.yaml'), line, column: 1, message: 'this key appears twice in the same map' }]);
  });

  it('runs one reload at a time and one more for changes made during it', async () => {
    const m = await copyMappings();
    cleanup.push(m.remove);
    const { logger, lines } = captureLogs();
    const opened = await MappingStore.open({ dir: m.dir, defaultRegion: 'US', hccTimezone: 'UTC', logger });
    if (!opened.ok) throw new Error('invalid');
    const store = opened.store;
    const results = await Promise.all([store.reload(), store.reload(), store.reload()]);
    expect(results).toEqual([true, true, true]);
    await until(() => lines.filter((l) => l.msg === 'mappings reloaded').length === 2);
    await store.stop();
    expect(lines.filter((l) => l.msg === 'mappings reloaded')).toHaveLength(2);
  });
});
