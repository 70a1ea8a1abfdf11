import { Hono } from 'hono';
import { requestContext } from './request-context';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { databaseUnavailable } from '../db/errors';
import { AppError, type ErrorBody } from '../core/errors';
import type { Logger } from '../log';
import type { MappingSet } from '../mapping/types';
import type { Metrics } from '../metrics';
import type { IngestQueue } from '../outbox/ingest';
import type { AppEnv } from './context';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics';
import { webhookRoutes } from './routes/webhooks';

export interface AppDeps {
  config: Config;
  database: Database;
  logger: Logger;
  metrics: Metrics;
  ingest: IngestQueue;
  mappings: { current(): MappingSet };
  now?: () => Date;
  /** Serve the webhook URLs (false in a worker-only process, which keeps health and metrics). */
  webhooks?: boolean;
  /** Extra route groups mounted by the caller (the admin), keeping this factory free of them. */
  mount?: (app: Hono<AppEnv>) => void;
}

/** Builds the HTTP app. Tests call `app.request()` on it; main serves it. */
export function createApp(deps: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  app.use(requestContext(deps.logger));

  app.route('/', healthRoutes(deps.database));
  app.route('/', metricsRoutes(deps.metrics, deps.database));
  if (deps.webhooks ?? true) {
    app.route(
      '/webhooks',
      webhookRoutes({
        config: deps.config,
        metrics: deps.metrics,
        ingest: deps.ingest,
        mappings: deps.mappings,
        now: deps.now ?? (() => new Date()),
      }),
    );
  }
  deps.mount?.(app);

  app.notFound((c) => c.json<ErrorBody>({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  app.onError((err, c) => {
    const log = c.get('log') ?? deps.logger;
    if (err instanceof AppError) {
      if (err.status >= 500) log.error({ err, cause: err.cause, code: err.code }, err.message);
      return c.json(err.toBody(), err.status);
    }
    const dbFailure = databaseUnavailable(err);
    if (dbFailure !== undefined) {
      log.warn({ err: dbFailure }, 'the database is unavailable');
      const unavailable = new AppError('database_unavailable', 'the database cannot be reached right now; try again shortly');
      return c.json(unavailable.toBody(), unavailable.status);
    }
    log.error({ err }, 'unhandled error');
    return c.json<ErrorBody>({ error: { code: 'internal', message: 'internal error; see the server log for request ' + c.get('requestId') } }, 500);
  });

  return app;
}
