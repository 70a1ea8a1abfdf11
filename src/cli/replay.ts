import { hostname, userInfo } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Actor } from '../admin/auth';
import { BulkReplayBodySchema, IdParamSchema, callCount, describeFilter, describeIssues, type BulkReplayInput } from '../admin/schemas';
import { AdminService } from '../admin/service';
import { crmKindsOf } from '../core/crm-targets';
import { ActionRefused } from '../admin/sync-actions';
import { loadConfigOrExit } from '../config';
import { openDatabase, type Database } from '../db/client';
import { AppError, errorMessage } from '../core/errors';
import { createLogger, type Logger } from '../log';
import { formatMappingErrors, loadMappings } from '../mapping';
import { sourceTimeZones } from '../sources';
import { timeZoneVariables } from '../sources/settings-registry';
import { SOURCE_NAMES } from '../core/event';
import type { MappingSet } from '../mapping/mapping-set';
import type { CrmKind } from '../core/crm-record';

/**
 * `npm run replay -- --status failed --source hcc --since 2h [--until 30m] [--dry-run]`
 * `npm run replay -- --id 42 [--dry-run]`   `npm run replay -- --id 42 --discard`
 *
 * The admin's replay and discard from a shell, against the service's
 * database (DATABASE_URL, or the PGlite in DATA_DIR when the service is
 * stopped) and mappings (MAPPINGS_DIR). Same filter, same batches, same
 * checks and the same audit trail (via 'cli') as the API.
 */

export const USAGE = `Usage: npm run replay -- --status <status> [--source <source>] [--since <time>] [--until <time>] [--dry-run]
       npm run replay -- --id <sync id> [--dry-run]
       npm run replay -- --id <sync id> --discard

With --status: queues every call matching the filter for another sync, now,
with a fresh retry budget (the worker folds each with the mappings current
when it writes it).
With --id: replays that one call: folds it with the current mappings and
queues it, or says why the mappings still fail on it and queues nothing.

Options:
  --status <status>   pending | synced | failed | discarded (required for a bulk replay)
  --source <source>   ${SOURCE_NAMES.join(' | ')} (default: every source)
  --since <time>      calls that changed at or after: 30m, 2h, 7d (ago), 2025-11-21T08:00:00Z or 2025-11-21
  --until <time>      calls that changed before; same forms
  --id <sync id>      one call, by the id the admin page and API show
  --discard           with --id: stop trying to sync that call (refused when it is already synced)
  --dry-run           change nothing: with --status count and list the matching calls,
                      with --id show what the current mappings make of the call
  -h, --help          this text

Either way, events stored as ignored whose type the current mappings now sync
are made pending, so the worker folds them in.

Uses DATABASE_URL (or DATA_DIR for the embedded database), MAPPINGS_DIR,
DEFAULT_PHONE_REGION, ${timeZoneVariables.join(', ')} and CRM_TARGET, like the service.
Exit codes: 0 done, 1 could not run (database, mappings), 2 bad flags,
3 refused (no such call, the mappings still fail on it, a worker is writing it,
already synced).`;

export const EXIT = { ok: 0, cannotRun: 1, badFlags: 2, refused: 3 } as const;

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export type ReplayCommand =
  | { kind: 'bulk'; input: BulkReplayInput }
  | { kind: 'one'; id: number; action: 'replay' | 'discard' | 'show' };

export type ParsedArgs = { kind: 'help' } | { kind: 'run'; command: ReplayCommand } | { kind: 'error'; message: string };

const FILTER_FLAGS = ['status', 'source', 'since', 'until'] as const;

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
        id: { type: 'string' },
        discard: { type: 'boolean' },
        'dry-run': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    // node's messages name the flag ("Unknown option '--stauts'", "Option '--since <value>' argument missing").
    return { kind: 'error', message: errorMessage(err) };
  }
  if (values['help']) return { kind: 'help' };
  const dryRun = values['dry-run'] === true;
  const id = values['id'];

  if (typeof id === 'string') {
    const filters = FILTER_FLAGS.filter((flag) => values[flag] !== undefined);
    if (filters.length > 0) {
      return { kind: 'error', message: `--id names one call: leave out ${filters.map((f) => `--${f}`).join(', ')} (they filter a bulk replay)` };
    }
    const parsed = IdParamSchema.safeParse({ id });
    if (!parsed.success) return { kind: 'error', message: describeIssues(parsed.error, { naming: () => '--id' }) };
    if (values['discard'] === true && dryRun) return { kind: 'error', message: '--discard and --dry-run do not go together: leave out --dry-run to discard the call' };
    const action = values['discard'] === true ? 'discard' : dryRun ? 'show' : 'replay';
    return { kind: 'run', command: { kind: 'one', id: Number(parsed.data.id), action } };
  }
  if (values['discard'] === true) return { kind: 'error', message: '--discard needs --id <sync id>: bulk discard is not offered' };

  const candidate: Record<string, unknown> = { dryRun };
  for (const key of FILTER_FLAGS) {
    const value = values[key];
    if (value !== undefined) candidate[key] = value;
  }
  const parsed = BulkReplayBodySchema.safeParse(candidate);
  if (!parsed.success) return { kind: 'error', message: describeIssues(parsed.error, { naming: (field) => `--${field === 'dryRun' ? 'dry-run' : field}` }) };
  return { kind: 'run', command: { kind: 'bulk', input: parsed.data } };
}

export function cliActor(log?: Logger): Actor {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (some containers): the host still says where it ran.
  }
  return { via: 'cli', ip: null, userAgent: 'callsync-cli', context: { osUser: user, host: hostname() }, ...(log ? { log } : {}) };
}

export interface ReplayCliDeps {
  /** Opens the database; only called once the flags are known to be good. */
  connect: () => Promise<Database>;
  /** Loads the current mappings (MAPPINGS_DIR); rejects with a readable message when they do not load. */
  mappings: () => Promise<MappingSet>;
  /** The CRM records CRM_TARGET needs: a replay by id builds them too, so a CRM-side mapping error is caught. */
  crmKinds?: () => readonly CrmKind[];
  logger: Logger;
  io: CliIo;
  now?: () => Date;
  actor?: Actor;
}

/** Runs the CLI; returns the exit code. */
export async function runReplayCli(argv: string[], deps: ReplayCliDeps): Promise<number> {
  const parsed = parseReplayArgs(argv);
  if (parsed.kind === 'help') {
    deps.io.out(`${USAGE}\n`);
    return EXIT.ok;
  }
  if (parsed.kind === 'error') {
    deps.io.err(`${parsed.message}\n\n${USAGE}\n`);
    return EXIT.badFlags;
  }
  // A discard reads no mapping: it must work while a mapping file is broken.
  const command = parsed.command;
  const opened = await openEach(deps, !(command.kind === 'one' && command.action === 'discard'));
  if (typeof opened === 'string') {
    deps.io.err(opened);
    return EXIT.cannotRun;
  }
  const { mappings, database } = opened;
  const service = new AdminService({
    database,
    logger: deps.logger,
    mappings: { current: () => mappings },
    crmKinds: deps.crmKinds?.(),
    ...(deps.now ? { now: deps.now } : {}),
  });
  const actor = deps.actor ?? cliActor(deps.logger);
  try {
    if (command.kind === 'bulk') deps.io.out(await bulk(service, command.input, actor));
    else deps.io.out(await one(service, command, actor));
    return EXIT.ok;
  } catch (err) {
    if (err instanceof ActionRefused || (err instanceof AppError && err.code === 'not_found')) {
      deps.io.err(`Refused: ${err.message}\n`);
      return EXIT.refused;
    }
    if (err instanceof AppError && err.code === 'validation_failed') {
      deps.io.err(`${err.message.replace(/^(since|until):/, '--$1:')}\n`);
      return EXIT.badFlags;
    }
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
    const cause = err instanceof Error && err.cause !== undefined ? err.cause : err;
    const causeCode = typeof cause === 'object' && cause !== null && 'code' in cause ? String((cause as { code: unknown }).code) : '';
    deps.io.err(
      code === '42P01' || causeCode === '42P01'
        ? 'The database has no callsync tables yet: run `npm run db:migrate` (or start the service once).\n'
        : `${command.kind === 'bulk' || command.action === 'replay' ? 'Replay' : command.action === 'discard' ? 'Discard' : 'Reading the call'} failed: ${errorMessage(err)}\n`,
    );
    return EXIT.cannotRun;
  }
}

/** For a discard, which never folds: anything that asks for a mapping is a bug. */
const NO_MAPPINGS: MappingSet = {
  classify: () => {
    throw new Error('a discard does not read the mappings');
  },
  fold: () => Promise.reject(new Error('a discard does not read the mappings')),
  toCrm: () => Promise.reject(new Error('a discard does not read the mappings')),
};

/** The mappings, then the database (a broken mapping file stops the CLI before it connects); or what failed, as the line to print. */
async function openEach(deps: ReplayCliDeps, needsMappings: boolean): Promise<{ mappings: MappingSet; database: Database } | string> {
  const steps = { mappings: 'Cannot load the mappings', database: 'Cannot open the database' } as const;
  let step: keyof typeof steps = 'mappings';
  try {
    const mappings = needsMappings ? await deps.mappings() : NO_MAPPINGS;
    step = 'database';
    return { mappings, database: await deps.connect() };
  } catch (err) {
    return `${steps[step]}: ${errorMessage(err)}\n`;
  }
}

async function bulk(service: AdminService, input: BulkReplayInput, actor: Actor): Promise<string> {
  const result = await service.replayBulk(input, actor);
  const described = describeFilter(result.filter);
  const skipped = result.skipped > 0 ? `\n${callCount(result.skipped)} more match but are being synced right now; they are left alone.` : '';
  if (result.dryRun) {
    const lines = (result.calls ?? []).map(
      (c) => `  ${String(c.id).padStart(8)}  ${c.source.padEnd(11)}  ${c.callKey}  attempts ${c.attempts}${c.lastError ? `  ${c.lastError.slice(0, 120)}` : ''}`,
    );
    return (
      `Dry run: ${callCount(result.count)} would be replayed (${described}).${skipped}\n` +
      (lines.length > 0 ? `${lines.join('\n')}\n${result.truncated ? `  … and ${result.count - lines.length} more\n` : ''}` : '')
    );
  }
  const reclassified = (result.eventsReclassified ?? 0) > 0 ? `\n${events(result.eventsReclassified ?? 0)} stored as ignored, of types the mappings now sync, will be folded in.` : '';
  return `Replayed ${callCount(result.count)} (${described}).${skipped}${reclassified}\n`;
}

async function one(service: AdminService, command: Extract<ReplayCommand, { kind: 'one' }>, actor: Actor): Promise<string> {
  const { id } = command;
  switch (command.action) {
    case 'replay': {
      const result = await service.replayOne(id, actor);
      const extra = [
        result.eventsRequeued > 0 ? `${events(result.eventsRequeued)} requeued` : undefined,
        result.eventsReclassified > 0 ? `${events(result.eventsReclassified)} stored as ignored now folded in` : undefined,
      ].filter(Boolean);
      return `Replayed sync ${id} (was ${result.previousStatus}): folded with the current mappings and queued${extra.length > 0 ? `; ${extra.join(', ')}` : ''}.\n`;
    }
    case 'discard': {
      const result = await service.discardOne(id, actor);
      return `Discarded sync ${id} (was ${result.previousStatus}); ${events(result.eventsDiscarded)} discarded. A replay or a new webhook for the call brings it back.\n`;
    }
    case 'show': {
      const detail = await service.getSync(id, actor);
      const s = detail.sync;
      const head = `Sync ${id}: ${s.externalId} is ${s.status} (attempts ${s.attempts})${s.lastError ? `; last error: ${s.lastError}` : ''}.\n`;
      return detail.preview.ok
        ? `${head}Dry run: the current mappings fold it without error; a replay would store and send this activity:\n${JSON.stringify(detail.preview.activity, null, 2)}\n`
        : `${head}Dry run: the current mappings fail on it, so a replay would be refused: ${detail.preview.error}\n`;
    }
  }
}

function events(n: number): string {
  return `${n} ${n === 1 ? 'event' : 'events'}`;
}

async function main(): Promise<void> {
  let database: Database | undefined;
  const logger = createLogger({ level: 'warn', destination: process.stderr });
  try {
    // Read lazily: `--help` and bad flags need no configuration.
    let config: ReturnType<typeof loadConfigOrExit> | undefined;
    const configured = () => (config ??= loadConfigOrExit());
    process.exitCode = await runReplayCli(process.argv.slice(2), {
      connect: async () => {
        const c = configured();
        database = await openDatabase({ databaseUrl: c.DATABASE_URL, dataDir: c.DATA_DIR, poolSize: 2 });
        return database;
      },
      mappings: async () => {
        const c = configured();
        const loaded = await loadMappings({ dir: c.MAPPINGS_DIR, defaultRegion: c.DEFAULT_PHONE_REGION, timeZones: sourceTimeZones(c) });
        if (!loaded.ok) throw new Error(`${c.MAPPINGS_DIR} has errors:\n${formatMappingErrors(loaded.errors)}`);
        return loaded.set;
      },
      crmKinds: () => crmKindsOf(configured().crmTarget),
      // Log lines go to stderr so stdout stays the CLI's own answer.
      logger,
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
