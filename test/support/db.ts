import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import postgres from 'postgres';
import { openDatabase, type Database } from '../../src/db/client';
import { MIGRATIONS_DIR, runMigrations } from '../../src/db/run-migrations';

export type TestDbKind = 'pglite' | 'postgres';

/** PGlite always; real Postgres too when TEST_DATABASE_URL is set (CI sets it). */
export function testDbKinds(): TestDbKind[] {
  return realPostgresUrl() ? ['pglite', 'postgres'] : ['pglite'];
}

/**
 * The real Postgres the suite may use. Locally it is optional (the Postgres
 * tests are skipped without it); under CI (CI set, as .ci/run does) its
 * absence is an error, so the real-Postgres tests can never be skipped
 * silently there.
 */
export function realPostgresUrl(): string | undefined {
  const url = process.env.TEST_DATABASE_URL || undefined;
  if (!url && process.env.CI) throw new Error('CI is set but TEST_DATABASE_URL is not: the real-Postgres tests would be skipped');
  return url;
}

export interface TestDatabase {
  kind: TestDbKind;
  database: Database;
  /** Set for real Postgres: a URL other processes (workers under test) can connect to. */
  url: string | undefined;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database for one test file: its own Postgres database
 * (created here, dropped with FORCE after) or its own in-memory PGlite.
 * Tests therefore pass in any order and when run twice.
 */
export async function createTestDatabase(kind: TestDbKind): Promise<TestDatabase> {
  return kind === 'postgres' ? createPostgresTestDatabase() : createPgliteTestDatabase();
}

async function createPostgresTestDatabase(): Promise<TestDatabase> {
  const adminUrl = realPostgresUrl();
  if (!adminUrl) throw new Error('TEST_DATABASE_URL is not set');
  const name = `callsync_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({ databaseUrl: url.toString(), poolSize: 10 });
  await runMigrations(database);
  return {
    kind: 'postgres',
    database,
    url: url.toString(),
    async drop() {
      await database.close().catch(() => {});
      const cleanup = postgres(adminUrl, { max: 1, onnotice: () => {} });
      try {
        await cleanup.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await cleanup.end();
      }
    },
  };
}

/**
 * Starting PGlite runs initdb (2-3 s); loading a dump of an already migrated
 * instance takes a fraction of that. The dump is cached on disk per set of
 * migrations, written atomically so parallel test files can share it.
 */
async function migratedPgliteDump(): Promise<Blob> {
  const hash = createHash('sha256');
  for (const file of readdirSync(MIGRATIONS_DIR).filter((f) => f.endsWith('.sql')).sort()) {
    hash.update(file).update(readFileSync(path.join(MIGRATIONS_DIR, file)));
  }
  const dir = path.join(os.tmpdir(), 'callsync-test-cache');
  const file = path.join(dir, `pglite-${hash.digest('hex').slice(0, 16)}.tar`);
  if (existsSync(file)) return new Blob([readFileSync(file)]);
  const fresh = new PGlite();
  const database = await openDatabaseOn(fresh);
  await runMigrations(database);
  const dump = await fresh.dumpDataDir('none');
  await fresh.close();
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(3).toString('hex')}`;
  writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
  renameSync(tmp, file);
  return dump;
}

async function openDatabaseOn(client: PGlite): Promise<Database> {
  return openDatabase({ inMemory: true, pglite: client });
}

async function createPgliteTestDatabase(): Promise<TestDatabase> {
  const dump = await migratedPgliteDump();
  const database = await openDatabase({ inMemory: true, pglite: new PGlite({ loadDataDir: dump }) });
  return {
    kind: 'pglite',
    database,
    url: undefined,
    drop: () => database.close(),
  };
}
