import path from 'node:path';
import type { SourceName } from '../../src/core/event';

/**
 * Where a source's files live: src/sources/<source>/ holds its fixtures
 * (vendor bodies) and goldens (what the shipped mappings make of them).
 * Tests and benchmarks name these folders only through here.
 */

export const SOURCES_DIR = path.resolve(import.meta.dirname, '../../src/sources');

export function sourceDir(source: SourceName): string {
  return path.join(SOURCES_DIR, source);
}

export function fixturesDir(source: SourceName): string {
  return path.join(SOURCES_DIR, source, 'fixtures');
}

/** A fixture file: fixturePath('hcc', 'call-saved.json'). */
export function fixturePath(source: SourceName, name: string): string {
  return path.join(fixturesDir(source), name);
}

export function goldensDir(source: SourceName): string {
  return path.join(SOURCES_DIR, source, 'goldens');
}
