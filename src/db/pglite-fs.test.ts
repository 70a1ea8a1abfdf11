import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from './client';
import { DURABLE_START_PARAMS, FLUSH_FAILURE_EXIT_CODE, FlushingNodeFS } from './pglite-fs';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'callsync-pglite-fs-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function settings(query: (sql: string) => Promise<Array<Record<string, unknown>>>): Promise<Record<string, unknown>> {
  const rows = await query(`SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'wal_sync_method', 'synchronous_commit')`);
  return Object.fromEntries(rows.map((row) => [row.name, row.setting]));
}

describe('FlushingNodeFS (durable commits on the embedded database)', () => {
  it('flushes to the host at every commit, not on reads, and keeps the data across a reopen', async () => {
    const dir = tempDir();
    const flushed: number[] = [];
    const pg = new PGlite({ fs: new FlushingNodeFS(dir, (fd) => flushed.push(fd)), startParams: [...DURABLE_START_PARAMS] });
    try {
      expect(await settings(async (sql) => (await pg.query<Record<string, unknown>>(sql)).rows)).toEqual({
        fsync: 'on',
        wal_sync_method: 'fsync',
        synchronous_commit: 'on',
      });
      await pg.exec('CREATE TABLE t (id int PRIMARY KEY)');

      flushed.length = 0;
      await pg.query('SELECT count(*) FROM t');
      expect(flushed).toEqual([]);

      for (const id of [1, 2, 3]) await pg.query('INSERT INTO t VALUES ($1)', [id]);
      // Each commit waits for its WAL flush.
      expect(flushed.length).toBeGreaterThanOrEqual(3);
    } finally {
      await pg.close();
    }
    const reopened = new PGlite({ fs: new FlushingNodeFS(dir), startParams: [...DURABLE_START_PARAMS] });
    try {
      expect((await reopened.query<{ id: number }>('SELECT id FROM t ORDER BY id')).rows).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    } finally {
      await reopened.close();
    }
  }, 120_000);

  it('is what openDatabase uses for a data directory', async () => {
    const database = await openDatabase({ dataDir: tempDir() });
    try {
      expect(await settings((sql) => database.query(sql))).toEqual({ fsync: 'on', wal_sync_method: 'fsync', synchronous_commit: 'on' });
    } finally {
      await database.close();
    }
  }, 60_000);

  it('stops the process when a flush fails, before the commit returns, saying why; the next start recovers', async () => {
    // In a child: the process must exit (inside PGlite a PANIC would hang it instead).
    const dir = tempDir();
    const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, '../../test/support/pglite-failing-flush.ts'), dir], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(child.status).toBe(FLUSH_FAILURE_EXIT_CODE);
    expect(child.stdout).not.toContain('committed');
    expect(child.stderr).toContain(
      'callsync: the embedded database could not flush a commit to disk (EIO: i/o error, fsync (simulated)); ' +
        'stopping, so that the next start recovers it from its write-ahead log',
    );
    // The unacknowledged row may or may not have survived; the database opens and answers.
    const restarted = new PGlite({ fs: new FlushingNodeFS(dir), startParams: [...DURABLE_START_PARAMS] });
    try {
      const [row] = (await restarted.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows;
      expect([0, 1]).toContain(row?.n);
    } finally {
      await restarted.close();
    }
  }, 120_000);
});
