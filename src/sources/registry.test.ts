import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SOURCE_NAMES } from '../core/event';
import { envSchema } from '../config';
import { fixturesDir, goldensDir, sourceDir, SOURCES_DIR } from '../../test/support/source-files';
import { SOURCES } from './index';
import { credentialHeaders, SOURCE_SETTINGS } from './settings-registry';

/**
 * Every registered source is wired all the way: its folder with adapter,
 * settings, notes, tests, fixtures and a golden for each fixture, its mapping
 * and examples files, and its adapter agreeing with its settings. A sixth vendor cannot be half-wired.
 */

const MAPPINGS_DIR = path.resolve(import.meta.dirname, '../../mappings');
const jsonFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')).sort() : []);

describe.each(SOURCE_NAMES)('source %s', (source) => {
  const dir = sourceDir(source);

  it('has its folder: adapter, settings, NOTES.md and its tests', () => {
    for (const file of ['adapter.ts', 'settings.ts', 'NOTES.md', `${source}.test.ts`]) {
      expect(existsSync(path.join(dir, file)), `${source}/${file}`).toBe(true);
    }
  });

  it('has its mapping file and its examples in mappings/', () => {
    for (const file of [`${source}.yaml`, `examples/${source}.yaml`]) {
      expect(existsSync(path.join(MAPPINGS_DIR, file)), `mappings/${file}`).toBe(true);
    }
  });

  it('has fixtures, and a golden for every fixture (and no golden without one)', () => {
    const fixtures = jsonFiles(fixturesDir(source));
    expect(fixtures.length, `${source}/fixtures/ has no fixture`).toBeGreaterThan(0);
    expect(jsonFiles(goldensDir(source))).toEqual(fixtures);
  });

  it('has its adapter registered under its name, taking its headers and time zone from its settings', () => {
    const adapter = SOURCES[source];
    const settings = SOURCE_SETTINGS[source];
    expect(adapter.name).toBe(source);
    expect(adapter.keptHeaders).toBe(settings.keptHeaders);
    expect(adapter.timeZone).toBe('timeZone' in settings ? settings.timeZone : undefined);
  });

  it('keeps no credential header with the events, and redacts its credential headers from logs', () => {
    const settings = SOURCE_SETTINGS[source];
    for (const name of [...settings.keptHeaders, ...settings.redactedHeaders]) expect(name).toBe(name.toLowerCase());
    expect(settings.keptHeaders.filter((name) => credentialHeaders.includes(name))).toEqual([]);
    for (const name of settings.redactedHeaders) expect(credentialHeaders).toContain(name);
  });

  it('declares its environment variables in the service config, its zone variable among them', () => {
    const variables = Object.keys(settings(source).env);
    expect(variables.length).toBeGreaterThan(0);
    for (const name of variables) expect(Object.keys(envSchema.shape)).toContain(name);
    const zone = SOURCES[source].timeZone;
    if (zone !== undefined) expect(variables).toContain(zone.variable);
  });
});

describe('the sources registry', () => {
  it('has a folder for every source and no folder without a source', () => {
    const folders = readdirSync(SOURCES_DIR).filter((name) => statSync(path.join(SOURCES_DIR, name)).isDirectory());
    expect(folders.sort()).toEqual([...SOURCE_NAMES].sort());
  });

  it('gives no environment variable to two sources', () => {
    const all = SOURCE_NAMES.flatMap((source) => Object.keys(settings(source).env));
    expect(all.length).toBe(new Set(all).size);
  });

  it('gives every time-zone setting a distinct name', () => {
    const names = SOURCE_NAMES.flatMap((source) => SOURCES[source].timeZone?.name ?? []);
    expect(names.length).toBe(new Set(names).size);
  });
});

function settings(source: (typeof SOURCE_NAMES)[number]): { env: object } {
  return SOURCE_SETTINGS[source];
}
