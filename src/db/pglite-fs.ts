import { fsyncSync, writeSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { NodeFS } from '@electric-sql/pglite/nodefs';

/**
 * Durable commits for the embedded database.
 *
 * PGlite 0.5 starts Postgres with fsync off (`-F`), and turning it on alone
 * changes nothing: Emscripten's Node filesystem (NODEFS) has no fsync
 * operation, so Postgres' fsync() calls return success without reaching the
 * disk, and its fdatasync() is a no-op too. A commit was then only in the
 * OS page cache: safe from a crash of this process, lost (or the database
 * damaged) by an OS crash or a power cut, although the vendor got its 200.
 *
 * This filesystem is PGlite's NodeFS with the missing operation added:
 * NODEFS streams get an fsync that fsyncs the host file descriptor (NODEFS
 * opens one for files and directories alike), and Postgres runs with fsync
 * on and wal_sync_method=fsync, so every commit flushes the WAL before it
 * returns (with fdatasync, the default, it would still be the no-op).
 * Checkpoints flush data files the same way. Cost: one flush per commit,
 * about half a millisecond on this machine's SSD; intake commits a batch of
 * webhooks at a time, so it is paid per batch.
 *
 * A failed flush stops the process (exit code 70, the reason on stderr). Postgres itself
 * PANICs there, since after a failed fsync the only safe state is the one
 * recovered from the WAL at the next start; but inside PGlite a PANIC leaves
 * the next query spinning with the event loop blocked, so the process would
 * hang instead of restarting. The commit being flushed never returns: no 200
 * is given for it, and the vendor retries after the restart.
 *
 * It reaches into Emscripten's module (NODEFS), which PGlite does not
 * document: if a PGlite upgrade changes it, opening the database fails
 * with a clear message instead of silently running without flushes, and
 * src/db/pglite-fs.test.ts fails first.
 */
export const DURABLE_START_PARAMS: readonly string[] = [
  ...PGlite.defaultStartParams.filter((param) => param !== '-F'),
  '-c',
  'wal_sync_method=fsync',
];

/** Flushes one host file descriptor; tests pass one that counts. */
export type FlushFd = (fd: number) => void;

interface EmscriptenStream {
  nfd?: number;
}

interface NodefsInternals {
  stream_ops: { fsync?: (stream: EmscriptenStream) => number };
}

function nodefsOf(mod: object): NodefsInternals {
  const nodefs = (mod as { NODEFS?: Partial<NodefsInternals> }).NODEFS;
  if (typeof nodefs?.stream_ops !== 'object' || nodefs.stream_ops === null) {
    throw new Error(
      'this PGlite version does not expose NODEFS as expected, so the embedded database cannot flush its commits to disk; ' +
        'update src/db/pglite-fs.ts for it, or set DATABASE_URL',
    );
  }
  return nodefs as NodefsInternals;
}

export const FLUSH_FAILURE_EXIT_CODE = 70;

/** Says why on stderr (synchronously: nothing after this runs) and exits for a restart. */
function stopOnFlushFailure(err: unknown): never {
  const reason = err instanceof Error ? err.message : String(err);
  writeSync(
    2,
    `callsync: the embedded database could not flush a commit to disk (${reason}); ` +
      'stopping, so that the next start recovers it from its write-ahead log\n',
  );
  process.exit(FLUSH_FAILURE_EXIT_CODE);
}

export class FlushingNodeFS extends NodeFS {
  constructor(
    dataDir: string,
    private readonly flushFd: FlushFd = fsyncSync,
  ) {
    super(dataDir);
  }

  override async init(pg: PGlite, opts: Parameters<NodeFS['init']>[1]): ReturnType<NodeFS['init']> {
    const result = await super.init(pg, opts);
    const flushFd = this.flushFd;
    const addFsync = (mod: object) => {
      nodefsOf(mod).stream_ops.fsync = (stream) => {
        try {
          if (typeof stream.nfd === 'number') flushFd(stream.nfd);
        } catch (err) {
          stopOnFlushFailure(err);
        }
        return 0;
      };
    };
    return { emscriptenOpts: { ...result.emscriptenOpts, preRun: [...(result.emscriptenOpts.preRun ?? []), addFsync] } };
  }
}
