import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../../test/helpers/app';
import { createTestDatabase, realPostgresUrl } from '../../test/helpers/db';
import { openDatabase } from './client';
import { migrationsApplied, runMigrations } from './migrate';

const unusedMappings = {
  classify: () => 'sync' as const,
  fold: () => Promise.reject(new Error('unused')),
  toCrm: () => Promise.reject(new Error('unused')),
};

describe.skipIf(!realPostgresUrl())('migrations on real Postgres (skipped without TEST_DATABASE_URL)', () => {
  it('are safe when several processes start at once on an empty database', async () => {
    const adminUrl = realPostgresUrl() ?? '';
    const name = `callsync_test_migrate_${randomBytes(4).toString('hex')}`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE "${name}"`);
    const url = new URL(adminUrl);
    url.pathname = `/${name}`;
    // Separate pools, as separate processes would have.
    const databases = await Promise.all([1, 2, 3].map(() => openDatabase({ databaseUrl: url.toString(), poolSize: 2 })));
    try {
      await Promise.all(databases.map((db) => runMigrations(db)));
      for (const db of databases) expect(await migrationsApplied(db)).toBe(true);
      const [row] = await databases[0]?.query<{ n: number }>('SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations') ?? [];
      expect(row?.n).toBeGreaterThanOrEqual(2);
    } finally {
      await Promise.all(databases.map((db) => db.close()));
      await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
  });
});

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
