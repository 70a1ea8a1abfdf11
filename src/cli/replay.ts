import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Actor } from '../admin/auth';
import { BulkReplayBodySchema, callCount, describeIssues, type BulkReplayInput } from '../admin/schemas';
import { AdminService } from '../admin/service';
import { loadConfigOrExit } from '../config';
import { openDatabase, type Database } from '../db/client';
import { AppError, errorMessage } from '../errors';
import { createLogger, type Logger } from '../log';

/**
 * `npm run replay -- --status failed --source hcc --since 2h [--until 30m] [--dry-run]`
 *
 * The admin's bulk replay from a shell, against the service's database
 * (DATABASE_URL, or the PGlite in DATA_DIR when the service is stopped).
 * Same filter, same batches, same audit trail (via 'cli') as the API.
 * Exit codes: 0 done, 1 could not run (database), 2 bad flags.
 */

export const USAGE = `Usage: npm run replay -- [options]

Queues every call matching the filter for another sync, now, with a fresh retry budget.

Options:
  --status <status>   pending | synced | failed | discarded (default: failed)
  --source <source>   genesys-ocs | enreach | ucontact | hcc | webex-cc (default: every source)
  --since <time>      calls that changed at or after: 30m, 2h, 7d (ago), 2025-11-21T08:00:00Z or 2025-11-21
  --until <time>      calls that changed before; same forms
  --dry-run           only count and list the matching calls
  -h, --help          this text

Uses DATABASE_URL (or DATA_DIR for the embedded database), like the service.`;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export type ParsedArgs = { kind: 'help' } | { kind: 'run'; input: BulkReplayInput } | { kind: 'error'; message: string };

export function parseReplayArgs(argv: string[]): ParsedArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        status: { type: 'string' },
        source: { type: 'string' },
        since: { type: 'string' },
        until: { type: 'string' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // node's messages name the flag ("Unknown option '--stauts'", "Option '--since <value>' argument missing").
    return { kind: 'error', message: errorMessage(err) };
  }
  if (values['help']) return { kind: 'help' };
  const candidate: Record<string, unknown> = { dryRun: values['dry-run'] === true };
  for (const key of ['status', 'source', 'since', 'until'] as const) {
    const value = values[key];
    if (value !== undefined) candidate[key] = value;
  }
  const parsed = BulkReplayBodySchema.safeParse(candidate);
  if (!parsed.success) return { kind: 'error', message: describeIssues(parsed.error, { naming: (field) => `--${field === 'dryRun' ? 'dry-run' : field}` }) };
  return { kind: 'run', input: parsed.data };
}

export function cliActor(): Actor {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says where it ran.
  }
  return { via: 'cli', ip: null, userAgent: 'callsync-cli', context: { osUser: user, host: hostname() } };
}

/**
 * Runs the CLI; returns the exit code. `connect` opens the database, and is
 * only called once the flags are known to be good.
 */
export async function runReplayCli(
  argv: string[],
  deps: { connect: () => Promise<Database>; logger: Logger; io: CliIo; now?: () => Date; actor?: Actor },
): Promise<number> {
  const parsed = parseReplayArgs(argv);
  if (parsed.kind === 'help') {
    deps.io.out(`${USAGE}\n`);
    return 0;
  }
  if (parsed.kind === 'error') {
    deps.io.err(`${parsed.message}\n\n${USAGE}\n`);
    return 2;
  }
  let database: Database;
  try {
    database = await deps.connect();
  } catch (err) {
    deps.io.err(`Cannot open the database: ${errorMessage(err)}\n`);
    return 1;
  }
  const service = new AdminService({ database, logger: deps.logger, ...(deps.now ? { now: deps.now } : {}) });
  let result;
  try {
    result = await service.replayBulk(parsed.input, deps.actor ?? cliActor());
  } catch (err) {
    if (err instanceof AppError && err.code === 'validation_failed') {
      deps.io.err(`${err.message.replace(/^(since|until):/, '--$1:')}\n`);
      return 2;
    }
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const causeCode = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : '';
    deps.io.err(
      code === '42P01' || causeCode === '42P01'
        ? 'The database has no callsync tables yet: run `npm run db:migrate` (or start the service once).\n'
        : `Replay failed: ${errorMessage(err)}\n`,
    );
    return 1;
  }
  const f = result.filter;
  const described = [
    `status ${f.status}`,
    f.source ? `source ${f.source}` : 'every source',
    f.since ? `changed since ${f.since}` : undefined,
    f.until ? `before ${f.until}` : undefined,
  ]
    .filter(Boolean)
    .join(', ');
  const skipped = result.skipped > 0 ? `\n${callCount(result.skipped)} more match but are being synced right now; they are left alone.` : '';
  if (result.dryRun) {
    const lines = (result.calls ?? []).map(
      (c) => `  ${String(c.id).padStart(8)}  ${c.source.padEnd(11)}  ${c.callKey}  attempts ${c.attempts}${c.lastError ? `  ${c.lastError.slice(0, 120)}` : ''}`,
    );
    deps.io.out(
      `Dry run: ${callCount(result.count)} would be replayed (${described}).${skipped}\n` +
        (lines.length > 0 ? `${lines.join('\n')}\n${result.truncated ? `  … and ${result.count - lines.length} more\n` : ''}` : ''),
    );
  } else {
    deps.io.out(`Replayed ${callCount(result.count)} (${described}).${skipped}\n`);
  }
  return 0;
}

async function main(): Promise<void> {
  let database: Database | undefined;
  try {
    process.exitCode = await runReplayCli(process.argv.slice(2), {
      connect: async () => {
        const config = loadConfigOrExit();
        database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 });
        return database;
      },
      // Log lines go to stderr so stdout stays the CLI's own answer.
      logger: createLogger({ level: 'warn', destination: process.stderr }),
      io: { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) },
    });
  } finally {
    await database?.close().catch(() => {});
  }
}

// Run only as the entry point (tests import the functions above).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
