import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { FixableMappings, addEvent, auditRows, callRow, eventStatuses, seedCall } from '../../test/support/admin';
import { openDatabase } from '../db/client';
import { runMigrations } from '../db/run-migrations';
import { createLogger } from '../log';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { EXIT, parseReplayArgs, runReplayCli } from './replay';

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
    [[], '--status: required: name the status to replay (pending, synced, failed, discarded); nothing is replayed by default'],
    [['--source', 'hcc', '--since', '2h'], '--status: required: name the status to replay'],
    [['--status', 'failed', '--since', '999999w'], '--since: goes too far back: a relative time reaches at most 3650d (10 years); use a date for anything older'],
    [['--status', 'failed', '--until', '0000-01-01'], '--until: is out of range: times must fall between 1970-01-01 and 9999-12-31'],
    [['--id', '0'], '--id: must be a positive integer id'],
    [['--id', '12abc'], '--id: must be a positive integer id'],
    [['--id', '5', '--status', 'failed', '--since', '2h'], '--id names one call: leave out --status, --since (they filter a bulk replay)'],
    [['--discard'], '--discard needs --id <sync id>: bulk discard is not offered'],
    [['--id', '5', '--discard', '--dry-run'], '--discard and --dry-run do not go together: leave out --dry-run to discard the call'],
  ])('refuses %j', (argv, message) => {
    const parsed = parseReplayArgs(argv);
    expect(parsed.kind).toBe('error');
    expect(parsed.kind === 'error' ? parsed.message : '').toContain(message);
  });

  it('reads the filter of a bulk replay, and one call by id', () => {
    expect(parseReplayArgs(['--status', 'failed', '--source', 'hcc', '--since', '2h', '--dry-run'])).toEqual({
      kind: 'run',
      command: { kind: 'bulk', input: { status: 'failed', source: 'hcc', since: '2h', dryRun: true } },
    });
    expect(parseReplayArgs(['--id', '42'])).toEqual({ kind: 'run', command: { kind: 'one', id: 42, action: 'replay' } });
    expect(parseReplayArgs(['--id', '42', '--dry-run'])).toEqual({ kind: 'run', command: { kind: 'one', id: 42, action: 'show' } });
    expect(parseReplayArgs(['--id', '42', '--discard'])).toEqual({ kind: 'run', command: { kind: 'one', id: 42, action: 'discard' } });
    expect(parseReplayArgs(['-h'])).toEqual({ kind: 'help' });
  });

  it('exits 2 with the problem and the usage, before opening any database', async () => {
    const result = await runCli(['--status', 'broken'], { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('--status: expected one of pending, synced, failed, discarded');
    expect(result.stderr).toContain('Usage: npm run replay -- --status <status>');
  });
});

describe.each(testDbKinds())('replay CLI on %s', (kind) => {
  let testDb: TestDatabase;
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
  let mappings: FixableMappings;

  const db = useAdminTestDatabase(kind);
  beforeEach(() => {
    testDb = db();
    out.length = 0;
    err.length = 0;
    mappings = new FixableMappings();
  });

  const run = (argv: string[]) =>
    runReplayCli(argv, {
      connect: async () => testDb.database,
      mappings: async () => mappings,
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
    expect(await run(['--status', 'failed', '--since', '1h', '--until', '2h'])).toBe(2);
    expect(err.join('')).toMatch(/^--until: must be later than since/);
    expect(await auditRows(testDb.database)).toEqual([]);
  });

  it('exits 2 on an out-of-range time, touching nothing', async () => {
    const id = await seedCall(testDb.database, { callKey: 'x1', status: 'failed' });
    expect(await run(['--status', 'failed', '--since', '999999w'])).toBe(EXIT.badFlags);
    expect(err.join('')).toContain('--since: goes too far back');
    expect((await callRow(testDb.database, id))?.status).toBe('failed');
    expect(await auditRows(testDb.database)).toEqual([]);
  });

  it('replays one call by id with the current mappings: refused (exit 3) while they fail, queued once fixed', async () => {
    const id = await seedCall(testDb.database, {
      callKey: 'one-1',
      status: 'failed',
      attempts: 3,
      lastError: 'mapping failed: disposition: no label for code "NOSALE" in the value table',
      payload: { disposition: 'NOSALE' },
      events: ['failed'],
    });
    await addEvent(testDb.database, { callKey: 'one-1', eventType: 'note-added', status: 'ignored' });

    expect(await run(['--id', String(id), '--dry-run'])).toBe(EXIT.ok);
    expect(out.join('')).toBe(
      `Sync ${id}: hcc:one-1 is failed (attempts 3); last error: mapping failed: disposition: no label for code "NOSALE" in the value table.\n` +
        'Dry run: the current mappings fail on it, so a replay would be refused: disposition: no label for code "NOSALE" in the value table\n',
    );

    out.length = 0;
    expect(await run(['--id', String(id)])).toBe(EXIT.refused);
    expect(err.join('')).toBe(
      `Refused: the current mappings cannot fold sync ${id}, so it was not queued: disposition: no label for code "NOSALE" in the value table. Fix the mapping and replay again.\n`,
    );
    expect(out).toEqual([]);
    expect((await callRow(testDb.database, id))?.status).toBe('failed');

    err.length = 0;
    mappings.fix('NOSALE', 'No sale');
    expect(await run(['--id', String(id)])).toBe(EXIT.ok);
    // note-added syncs under these mappings: the ignored event is folded in too.
    expect(out.join('')).toBe(`Replayed sync ${id} (was failed): folded with the current mappings and queued; 1 event requeued, 1 event stored as ignored now folded in.\n`);
    expect(await callRow(testDb.database, id)).toMatchObject({ status: 'pending', attempts: 0, activity: { dispositionLabel: 'No sale', notes: 'call-ended,note-added' } });
    expect(await eventStatuses(testDb.database, 'one-1')).toEqual(['pending', 'pending']);

    expect((await auditRows(testDb.database)).map((a) => [a.action, a.subject, a.via, a.details['outcome'] ?? null, a.details['osUser']])).toEqual([
      ['sync.view', `call_sync:${id}`, 'cli', null, 'ops'],
      ['sync.replay', `call_sync:${id}`, 'cli', 'refused', 'ops'],
      ['sync.replay', `call_sync:${id}`, 'cli', 'queued', 'ops'],
    ]);
    expect(err).toEqual([]);
  });

  it('discards one call by id, refusing a synced one and an unknown id with exit 3', async () => {
    const id = await seedCall(testDb.database, { callKey: 'd-1', status: 'failed', events: ['failed'] });
    const synced = await seedCall(testDb.database, { callKey: 'd-2', status: 'synced' });
    expect(await run(['--id', String(id), '--discard'])).toBe(EXIT.ok);
    expect(out.join('')).toBe(`Discarded sync ${id} (was failed); 1 event discarded. A replay or a new webhook for the call brings it back.\n`);
    expect((await callRow(testDb.database, id))?.status).toBe('discarded');

    expect(await run(['--id', String(synced), '--discard'])).toBe(EXIT.refused);
    expect(await run(['--id', '999999', '--discard'])).toBe(EXIT.refused);
    expect(err.join('')).toBe(`Refused: sync ${synced} is already synced to the CRM; there is nothing to discard\nRefused: no sync with id 999999\n`);
    expect((await callRow(testDb.database, synced))?.status).toBe('synced');
    expect((await auditRows(testDb.database)).map((a) => [a.action, a.via, a.details['outcome']])).toEqual([
      ['sync.discard', 'cli', 'discarded'],
      ['sync.discard', 'cli', 'refused'],
    ]);
  });

  it('exits 1 when the mappings do not load, before touching the database', async () => {
    let connected = false;
    const code = await runReplayCli(['--id', '1'], {
      connect: async () => {
        connected = true;
        return testDb.database;
      },
      mappings: async () => {
        throw new Error('mappings/hcc.yaml:3:1 unknown key "sorce"');
      },
      logger,
      io,
    });
    expect(code).toBe(EXIT.cannotRun);
    expect(err.join('')).toBe('Cannot load the mappings: mappings/hcc.yaml:3:1 unknown key "sorce"\n');
    expect(connected).toBe(false);
  });

  it('discards while the mapping files are broken: a discard reads no mapping', async () => {
    const id = await seedCall(testDb.database, { callKey: 'd-broken', status: 'failed', events: ['failed'] });
    const code = await runReplayCli(['--id', String(id), '--discard'], {
      connect: async () => testDb.database,
      mappings: async () => {
        throw new Error('mappings/hcc.yaml:3:1 unknown key "sorce"');
      },
      logger,
      io,
    });
    expect([code, err.join('')]).toEqual([EXIT.ok, '']);
    expect((await callRow(testDb.database, id))?.status).toBe('discarded');
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
      // By id, with the shipped mappings (MAPPINGS_DIR defaults to ./mappings).
      const unknown = await runCli(['--id', '999999'], env);
      expect([unknown.code, unknown.stdout, unknown.stderr]).toEqual([3, '', 'Refused: no sync with id 999999\n']);
      const discarded = await runCli(['--id', '1', '--discard'], env);
      expect([discarded.code, discarded.stderr]).toEqual([0, '']);
      expect(discarded.stdout).toBe('Discarded sync 1 (was pending); 1 event discarded. A replay or a new webhook for the call brings it back.\n');
      await seed(async (db) => {
        expect((await db.query(`SELECT call_key, status FROM call_syncs ORDER BY id`))).toEqual([
          { call_key: 'cli-1', status: 'discarded' },
          { call_key: 'cli-2', status: 'synced' },
        ]);
        expect((await auditRows(db)).map((a) => [a.action, a.via, a.user_agent])).toEqual([
          ['syncs.replay', 'cli', 'callsync-cli'],
          ['sync.discard', 'cli', 'callsync-cli'],
        ]);
      });
    } finally {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
