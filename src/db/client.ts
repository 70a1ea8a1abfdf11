import { mkdirSync, openSync, closeSync, writeFileSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import * as schema from './schema';

export type Schema = typeof schema;
export type DrizzleDb = PgDatabase<PgQueryResultHKT, Schema>;

/** A row as raw SQL returns it. */
export type Row = Record<string, unknown>;

/** Something raw SQL can run on: the pool, or one transaction. */
export interface Queryable {
  /**
   * `prepare`: keep the parsed and planned statement on the connection
   * (postgres.js); worth it for hot statements with complex plans.
   */
  query<T extends Row = Row>(text: string, params?: readonly unknown[], options?: { prepare?: boolean }): Promise<T[]>;
}

/**
 * The database, whichever engine backs it: real Postgres through postgres.js
 * when DATABASE_URL is set, embedded PGlite otherwise. Both speak the same SQL
 * and run the same migrations; hot paths use raw SQL (`query`), the rest
 * drizzle (`db`).
 */
export interface Database extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  readonly db: DrizzleDb;
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /** Subscribe to NOTIFY on a channel; returns the unsubscribe. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Runs fn with a drizzle handle on one connection that holds the
   * cluster-wide lock `key` for the whole call (on PGlite, which serves one
   * process, an in-process queue). For schema migrations: see the Postgres
   * implementation for why the connection is not taken from the pool.
   */
  withLockedSession<T>(key: number, fn: (db: DrizzleDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface OpenOptions {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  poolSize?: number;
  /** PGlite only: keep everything in memory (tests). */
  inMemory?: boolean;
  /** PGlite only: use this instance (tests load a pre-migrated dump into one). */
  pglite?: PGlite;
  /** Postgres only: statement timeout so a stuck query cannot hold a webhook forever. */
  statementTimeoutMs?: number;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options);
  return openPglite(options);
}

const TIMESTAMPTZ_OID = 1184;

function openPostgres(url: string, options: OpenOptions): Database {
  const sql = postgres(url, {
    max: options.poolSize ?? 10,
    // Fail fast when the server is down so intake can answer 503 and the vendor retries.
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    connection: {
      application_name: 'callsync',
      ...(options.statementTimeoutMs ? { statement_timeout: options.statementTimeoutMs } : {}),
    },
    // int8 (bigserial ids, count(*)) as JS numbers: our ids stay far below 2^53.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (x: number | bigint) => x.toString(),
        parse: (x: string) => Number(x),
      },
    },
  });
  const db = drizzlePostgres(sql, { schema }) as unknown as DrizzleDb;
  const run = async <T extends Row>(
    q: postgres.Sql | postgres.TransactionSql,
    text: string,
    params: readonly unknown[] = [],
    prepare = false,
  ): Promise<T[]> => {
    const rows = await q.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare });
    // drizzle's postgres-js driver turns off postgres.js's timestamp parsing on
    // the shared client (it maps dates itself), so raw results get strings.
    // Give raw callers what PGlite gives them: Date objects.
    const timestampColumns = (rows.columns ?? []).filter((c) => c.type === TIMESTAMPTZ_OID).map((c) => c.name);
    if (timestampColumns.length > 0) {
      for (const row of rows as unknown as Row[]) {
        for (const name of timestampColumns) {
          const value = row[name];
          if (typeof value === 'string') row[name] = new Date(value);
        }
      }
    }
    return rows as unknown as T[];
  };

  return {
    kind: 'postgres',
    db,
    query: (text, params, options) => run(sql, text, params, options?.prepare),
    transaction: <T>(fn: (tx: Queryable) => Promise<T>) =>
      sql.begin((tx) => fn({ query: (text, params, options) => run(tx, text, params, options?.prepare) })) as Promise<T>,
    async listen(channel, onNotify) {
      const sub = await sql.listen(channel, (payload) => onNotify(payload));
      return async () => {
        await sub.unlisten();
      };
    },
    /*
     * A dedicated, short-lived connection (max 1), outside the pool: the
     * advisory lock is a session lock, so it and the migrator's statements
     * must share one connection, and taking that connection from the pool
     * would leave none for the migrator when DATABASE_POOL_SIZE=1 (start-up
     * then waited forever). With max 1 every statement of fn runs on the
     * session that holds the lock. No statement timeout: a migration may
     * rewrite a large table, and a second process must be able to wait here
     * for the first one's migration to finish. Closing the session releases
     * the lock even if the unlock cannot be sent.
     */
    async withLockedSession(key, fn) {
      const session = postgres(url, {
        max: 1,
        connect_timeout: 5,
        onnotice: () => {},
        connection: { application_name: 'callsync-migrate' },
      });
      try {
        await session.unsafe('SELECT pg_advisory_lock($1)', [key]);
        try {
          return await fn(drizzlePostgres(session, { schema }) as unknown as DrizzleDb);
        } finally {
          await session.unsafe('SELECT pg_advisory_unlock($1)', [key]).catch(() => {});
        }
      } finally {
        await session.end({ timeout: 5 });
      }
    },
    close: () => sql.end({ timeout: 5 }),
  };
}

async function openPglite(options: OpenOptions): Promise<Database> {
  // Loaded only when used: PGlite's module alone adds ~50 MB to a process
  // that talks to a real Postgres.
  const [{ PGlite }, { drizzle: drizzlePglite }, { FlushingNodeFS, DURABLE_START_PARAMS }] = await Promise.all([
    import('@electric-sql/pglite'),
    import('drizzle-orm/pglite'),
    import('./pglite-fs'),
  ]);
  let releaseDirLock = () => {};
  let client: PGlite;
  if (options.pglite) {
    client = options.pglite;
  } else if (options.inMemory) {
    client = new PGlite();
  } else {
    const dir = path.resolve(options.dataDir ?? './data', 'pglite');
    mkdirSync(dir, { recursive: true });
    releaseDirLock = lockDataDir(path.dirname(dir));
    // Commits flushed to disk before they return, so a 200 survives a power
    // cut too (PGlite alone never flushes: see pglite-fs.ts).
    client = new PGlite({ fs: new FlushingNodeFS(dir), startParams: [...DURABLE_START_PARAMS] });
  }
  try {
    await client.waitReady;
  } catch (err) {
    releaseDirLock();
    throw err;
  }
  const db = drizzlePglite(client, { schema }) as unknown as DrizzleDb;
  let lockQueue: Promise<unknown> = Promise.resolve();
  const run = async <T extends Row>(
    q: Pick<PGlite, 'query'>,
    text: string,
    params: readonly unknown[] = [],
  ): Promise<T[]> => (await q.query<T>(text, params as unknown[])).rows;

  return {
    kind: 'pglite',
    db,
    query: (text, params) => run(client, text, params),
    transaction: (fn) => client.transaction((tx) => fn({ query: (text, params) => run(tx, text, params) })),
    async listen(channel, onNotify) {
      const unsub = await client.listen(channel, onNotify);
      return async () => {
        await unsub();
      };
    },
    // One process owns a PGlite directory (see lockDataDir): an in-process queue is enough.
    withLockedSession: (_key, fn) => {
      const run = lockQueue.then(() => fn(db));
      lockQueue = run.then(
        () => undefined,
        () => undefined,
      );
      return run;
    },
    async close() {
      try {
        await client.close();
      } finally {
        releaseDirLock();
      }
    },
  };
}

/**
 * PGlite is an embedded, single-process database: two processes opening the
 * same directory would corrupt it. A pid file refuses the second one clearly
 * (and is taken over when the pid it names is gone, e.g. after kill -9).
 */
function lockDataDir(dir: string): () => void {
  const lockPath = path.join(dir, 'pglite.pid');
  const take = () => {
    const fd = openSync(lockPath, 'wx');
    writeFileSync(fd, String(process.pid));
    closeSync(fd);
  };
  try {
    take();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = Number(readFileSync(lockPath, 'utf8').trim());
    if (Number.isInteger(holder) && holder !== process.pid && processAlive(holder)) {
      throw new Error(
        `The embedded database in ${dir} is in use by process ${holder}. PGlite serves one process; ` +
          'set DATABASE_URL to share a Postgres between processes (e.g. separate web and worker roles).',
      );
    }
    unlinkSync(lockPath);
    take();
  }
  return () => {
    try {
      if (readFileSync(lockPath, 'utf8').trim() === String(process.pid)) unlinkSync(lockPath);
    } catch {
      // already gone
    }
  };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
