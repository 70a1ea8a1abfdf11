import { loadConfigOrExit } from '../config';
import { openDatabase } from '../db/client';
import { MIGRATIONS_DIR, runMigrations } from '../db/run-migrations';
import { errorMessage } from '../core/errors';

/** `npm run db:migrate`: applies the committed migrations (the service also does this at start). */
const config = loadConfigOrExit();
try {
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: 2 });
  await runMigrations(database);
  await database.close();
  process.stdout.write(`Migrations from ${MIGRATIONS_DIR} applied to ${config.DATABASE_URL ? 'Postgres' : `PGlite in ${config.DATA_DIR}`}.\n`);
} catch (err) {
  process.stderr.write(`Migration failed: ${errorMessage(err)}\n`);
  process.exit(1);
}
