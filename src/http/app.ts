import { Hono } from 'hono';
import { requestContext } from './request-context';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { AppError } from '../core/errors';
import type { Logger } from '../log';
import type { MappingSet } from '../mapping/mapping-set';
import type { Metrics } from '../metrics';
import type { IngestQueue } from '../outbox/ingest';
import type { AppEnv } from './context';
import { errorResponse, jsonErrorResponse } from './error-response';
import { healthRoutes } from './routes/health';
import { metricsRoutes } from './routes/metrics-endpoint';
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

  app.notFound((c) => jsonErrorResponse(c, new AppError('not_found', `no route for ${c.req.method} ${c.req.path}`)));

  app.onError((err, c) => {
    const { status, body } = errorResponse(err, { requestId: c.get('requestId'), log: c.get('log') ?? deps.logger });
    return c.json(body, status);
  });

  return app;
}
