import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditRows, callRow, seedCall } from '../admin/testing';
import { openDatabase } from '../db/client';
import { runMigrations } from '../db/migrate';
import { createLogger } from '../log';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/helpers/db';
import { parseReplayArgs, runReplayCli } from './replay';

const ROOT = path.resolve(import.meta.dirname, '../..');
const logger = createLogger({ level: 'silent' });

/** Runs `npm run replay -- <args>` the way npm does (node --import tsx src/cli/replay.ts). */
function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/replay.ts', ...args],
      { cwd: ROOT, env: { ...process.env, DATABASE_URL: '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('replay CLI flags', () => {
  it.each([
    [['--stauts', 'failed'], "Unknown option '--stauts'"],
    [['--since'], "Option '--since <value>' argument missing"],
    [['--status', 'broken'], '--status: expected one of pending, synced, failed, discarded'],
    [['--source', 'zendesk'], '--source: expected one of genesys-ocs, enreach, ucontact, hcc, webex-cc'],
    [['--since', 'yesterday'], '--since: expected a relative time such as 30m, 2h or 7d'],
    [['failed'], "Unexpected argument 'failed'"],
  ])('refuses %j', (argv, message) => {
    const parsed = parseReplayArgs(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' ? parsed.message : '').toContain(message);
  });

  it('reads the filter, defaulting to failed', () => {
    expect(parseReplayArgs(['--source', 'hcc', '--since', '2h', '--dry-run'])).toEqual({
      kind: 'run',
      input: { status: 'failed', source: 'hcc', since: '2h', dryRun: true },
    });
    expect(parseReplayArgs(['-h'])).toEqual({ kind: 'help' });
  });

  it('exits 2 with the problem and the usage, before opening any database', async () => {
    const result = await runCli(['--status', 'broken'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('--status: expected one of pending, synced, failed, discarded');
    expect(result.stderr).toContain('Usage: npm run replay -- [options]');
  });
});

describe.each(testDbKinds())('replay CLI on %s', (kind) => {
  let testDb: TestDatabase;
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });
  beforeEach(async () => {
    await testDb.database.query('TRUNCATE webhook_events, call_syncs, sync_attempts, admin_audit RESTART IDENTITY CASCADE');
    out.length = 0;
    err.length = 0;
  });

  const run = (argv: string[]) =>
    runReplayCli(argv, {
      connect: async () => testDb.database,
      logger,
      io,
      actor: { via: 'cli', ip: null, userAgent: 'callsync-cli', context: { osUser: 'ops', host: 'box-1' } },
    });

  it('counts on a dry run, then replays and audits as the CLI', async () => {
    const hcc = await seedCall(testDb.database, { callKey: 'h1', status: 'failed', attempts: 4, lastError: 'mapping failed: boom', updatedAtOffset: -600 });
    const other = await seedCall(testDb.database, { source: 'enreach', callKey: 'e1', status: 'failed', updatedAtOffset: -600 });
    const old = await seedCall(testDb.database, { callKey: 'h-old', status: 'failed', updatedAtOffset: -3 * 3600 });

    expect(await run(['--status', 'failed', '--source', 'hcc', '--since', '2h', '--dry-run'])).toBe(0);
    expect(out.join('')).toMatch(/^Dry run: 1 call would be replayed \(status failed, source hcc, changed since \d{4}-.+Z\)\.\n\s+\d+\s+hcc\s+h1\s+attempts 4\s+mapping failed: boom\n$/);
    expect((await callRow(testDb.database, hcc))?.status).toBe('failed');

    out.length = 0;
    expect(await run(['--status', 'failed', '--source', 'hcc', '--since', '2h'])).toBe(0);
    expect(out.join('')).toMatch(/^Replayed 1 call \(status failed, source hcc, changed since .+Z\)\.\n$/);
    expect(await callRow(testDb.database, hcc)).toMatchObject({ status: 'pending', attempts: 0 });
    expect((await callRow(testDb.database, other))?.status).toBe('failed');
    expect((await callRow(testDb.database, old))?.status).toBe('failed');

    const audit = await auditRows(testDb.database);
    expect(audit.map((a) => [a.action, a.via, a.ip, a.user_agent, a.details['count'], a.details['osUser'], a.details['host']])).toEqual([
      ['syncs.replay.dry_run', 'cli', null, 'callsync-cli', 1, 'ops', 'box-1'],
      ['syncs.replay', 'cli', null, 'callsync-cli', 1, 'ops', 'box-1'],
    ]);
    expect(audit[1]?.details['filter']).toMatchObject({ status: 'failed', source: 'hcc', given: { status: 'failed', source: 'hcc', since: '2h' } });
    expect(err).toEqual([]);
  });

  it('exits 2 when since is not before until', async () => {
    expect(await run(['--since', '1h', '--until', '2h'])).toBe(2);
    expect(err.join('')).toMatch(/^--until: must be later than since/);
    expect(await auditRows(testDb.database)).toEqual([]);
  });

  it('runs as `npm run replay` against the service database', async () => {
    let env: Record<string, string>;
    let dataDir: string | undefined;
    let seed: (fn: (db: TestDatabase['database']) => Promise<void>) => Promise<void>;
    if (kind === 'postgres') {
      env = { DATABASE_URL: testDb.url ?? '' };
      seed = (fn) => fn(testDb.database);
    } else {
      // The embedded database in DATA_DIR, as the service leaves it (the service is stopped: PGlite serves one process).
      dataDir = mkdtempSync(path.join(os.tmpdir(), 'callsync-cli-'));
      env = { DATA_DIR: dataDir };
      const dir = dataDir;
      seed = async (fn) => {
        const db = await openDatabase({ dataDir: dir });
        try {
          await runMigrations(db);
          await fn(db);
        } finally {
          await db.close();
        }
      };
    }
    try {
      await seed(async (db) => {
        await seedCall(db, { callKey: 'cli-1', status: 'failed', updatedAtOffset: -60 });
        await seedCall(db, { callKey: 'cli-2', status: 'synced', updatedAtOffset: -60 });
      });
      const result = await runCli(['--status', 'failed', '--source', 'hcc', '--since', '2h'], env);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Replayed 1 call \(status failed, source hcc, changed since .+Z\)\.\n$/);
      await seed(async (db) => {
        expect((await db.query(`SELECT call_key, status FROM call_syncs ORDER BY id`))).toEqual([
          { call_key: 'cli-1', status: 'pending' },
          { call_key: 'cli-2', status: 'synced' },
        ]);
        expect((await auditRows(db)).map((a) => [a.action, a.via, a.user_agent])).toEqual([['syncs.replay', 'cli', 'callsync-cli']]);
      });
    } finally {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
