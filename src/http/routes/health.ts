import { Hono } from 'hono';
import type { Database } from '../../db/client';
import { migrationsApplied } from '../../db/run-migrations';
import { AppError, errorMessage } from '../../core/errors';
import type { AppEnv } from '../context';

/** GET /healthz: the process answers. GET /readyz: the database answers and is migrated. */
export function healthRoutes(database: Database): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', async (c) => {
    let migrated: boolean;
    try {
      migrated = await migrationsApplied(database);
    } catch (err) {
      throw new AppError('not_ready', `database unreachable: ${errorMessage(err)}`, { cause: err });
    }
    if (!migrated) throw new AppError('not_ready', 'database migrations are not applied yet');
    return c.json({ status: 'ready', database: database.kind });
  });
  return app;
}
