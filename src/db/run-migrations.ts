import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { PgliteDatabase } from 'drizzle-orm/pglite';
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import type { Database } from './client';

/** drizzle/ at the package root, whether this runs from src/db (tsx) or a bundle in dist/. */
export const MIGRATIONS_DIR = findUp(path.dirname(fileURLToPath(import.meta.url)), 'drizzle/meta/_journal.json');

function findUp(from: string, marker: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, marker))) return path.join(dir, marker.split('/')[0] ?? '');
    if (path.dirname(dir) === dir) throw new Error(`cannot find ${marker} above ${from}`);
  }
}

/** Any fixed number: every process that migrates takes the same advisory lock. */
export const MIGRATION_LOCK_KEY = 0x6361_6c6c; // "call"

/**
 * Applies the committed drizzle migrations. Two processes starting at once
 * (web and worker, or N workers) serialise on an advisory lock: the second
 * waits, then finds nothing left to apply. Without it both would race to
 * create drizzle's bookkeeping table and one would crash. The lock and the
 * migration share one dedicated connection (withLockedSession), so any
 * DATABASE_POOL_SIZE works, 1 included.
 */
export async function runMigrations(database: Database): Promise<void> {
  await database.withLockedSession(MIGRATION_LOCK_KEY, async (db) => {
    const config = { migrationsFolder: MIGRATIONS_DIR };
    if (database.kind === 'pglite') {
      await migratePglite(db as unknown as PgliteDatabase<Record<string, never>>, config);
    } else {
      await migratePostgres(db as unknown as PostgresJsDatabase<Record<string, never>>, config);
    }
  });
}

function expectedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(path.join(MIGRATIONS_DIR, 'meta/_journal.json'), 'utf8')) as {
    entries: unknown[];
  };
  return journal.entries.length;
}

/** For /readyz: every committed migration has been applied to this database. */
export async function migrationsApplied(database: Database): Promise<boolean> {
  const [exists] = await database.query<{ table: string | null }>(`SELECT to_regclass('drizzle.__drizzle_migrations')::text AS table`);
  if (!exists?.table) return false;
  const rows = await database.query<{ n: number }>(`SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`);
  return (rows[0]?.n ?? 0) >= expectedMigrationCount();
}
