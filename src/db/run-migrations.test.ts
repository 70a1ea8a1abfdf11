import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../../test/support/app';
import { createTestDatabase, realPostgresUrl, testDbKinds } from '../../test/support/db';
import { openDatabase } from './client';
import { MIGRATION_LOCK_KEY, MIGRATIONS_DIR, migrationsApplied, runMigrations } from './run-migrations';

const unusedMappings = {
  classify: () => 'sync' as const,
  fold: () => Promise.reject(new Error('unused')),
  toCrm: () => Promise.reject(new Error('unused')),
};

/** An empty scratch database on the real Postgres, and how to drop it. */
async function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const adminUrl = realPostgresUrl() ?? '';
  const name = `callsync_test_migrate_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE "${name}"`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    },
  };
}

/** Rejects instead of hanging the suite when start-up would wait forever. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe.skipIf(!realPostgresUrl())('migrations on real Postgres (skipped without TEST_DATABASE_URL)', () => {
  // Pool size 1 used to hang: the advisory lock took the only pooled connection.
  it.each([1, 2])('are safe when several processes with a pool of %i start at once on an empty database', async (poolSize) => {
    const scratch = await scratchDatabase();
    // Separate pools, as separate processes would have.
    const databases = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: scratch.url, poolSize })));
    try {
      await within(15_000, 'runMigrations', Promise.all(databases.map((db) => runMigrations(db))));
      for (const db of databases) expect(await migrationsApplied(db)).toBe(true);
      const first = databases[0];
      if (!first) throw new Error('no database opened');
      const [row] = await first.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations');
      expect(row?.n).toBe(expectedMigrations());
      // The lock is released and its dedicated connections are gone (a
      // backend may take a moment to leave pg_stat_activity after the close).
      const held = await first.query(
        `SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE d.datname = current_database() AND l.locktype = 'advisory' AND l.objid = $1::bigint::oid`,
        [MIGRATION_LOCK_KEY],
      );
      expect(held).toEqual([]);
      await expect
        .poll(async () => {
          const [sessions] = await first.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'callsync-migrate'`,
          );
          return sessions?.n;
        }, { timeout: 3_000 })
        .toBe(0);
    } finally {
      await Promise.all(databases.map((db) => db.close()));
      await scratch.drop();
    }
  });

  it('leaves a pool of 1 usable for the service after migrating', async () => {
    const scratch = await scratchDatabase();
    const database = await openDatabase({ databaseUrl: scratch.url, poolSize: 1 });
    try {
      await within(15_000, 'runMigrations', runMigrations(database));
      await database.query(
        `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, raw_body, payload, headers)
         VALUES ('enreach', 'QueueCallInArrived', 'k1', 'c1', '{}', '{}'::jsonb, '{}'::jsonb)`,
      );
      const rows = await database.query<{ dedupe_key: string }>('SELECT dedupe_key FROM webhook_events');
      expect(rows).toEqual([{ dedupe_key: 'k1' }]);
    } finally {
      await database.close();
      await scratch.drop();
    }
  });
});

function expectedMigrations(): number {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta/_journal.json'), 'utf8')) as { entries: unknown[] };
  return journal.entries.length;
}

describe('GET /readyz', () => {
  it('is ready once every migration is applied, and says why not otherwise', async () => {
    const migrated = await createTestDatabase('pglite');
    try {
      const ready = await buildTestApp({ database: migrated.database, mappings: unusedMappings }).app.request('/readyz');
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready', database: 'pglite' });
    } finally {
      await migrated.drop();
    }

    const empty = await openDatabase({ inMemory: true });
    try {
      const notReady = await buildTestApp({ database: empty, mappings: unusedMappings }).app.request('/readyz');
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toEqual({ error: { code: 'not_ready', message: 'database migrations are not applied yet' } });
      await runMigrations(empty);
      expect((await buildTestApp({ database: empty, mappings: unusedMappings }).app.request('/readyz')).status).toBe(200);
    } finally {
      await empty.close();
    }
    const down = await buildTestApp({ database: empty, mappings: unusedMappings }).app.request('/readyz');
    expect(down.status).toBe(503);
    expect(((await down.json()) as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'not_ready',
      message: expect.stringMatching(/^database unreachable: /),
    });
  });
});

describe.each(testDbKinds())('tables after migrating on %s', (kind) => {
  it('leave room on each page of the tables updated per event, for HOT updates', async () => {
    const migrated = await createTestDatabase(kind);
    try {
      const tables = await migrated.database.query<{ relname: string; reloptions: string[] | null }>(
        `SELECT relname, reloptions FROM pg_class WHERE relname IN ('webhook_events', 'call_syncs') ORDER BY relname`,
      );
      expect(tables).toEqual([
        { relname: 'call_syncs', reloptions: ['fillfactor=70'] },
        { relname: 'webhook_events', reloptions: ['fillfactor=70'] },
      ]);
    } finally {
      await migrated.drop();
    }
  });
});
