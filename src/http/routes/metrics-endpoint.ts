import { Hono } from 'hono';
import type { Database } from '../../db/client';
import type { Metrics } from '../../metrics';
import { readOutboxGauges } from '../../outbox/outbox-gauges';
import type { AppEnv } from '../context';

/**
 * GET /metrics in Prometheus text format. Outbox depth and the age of the
 * oldest pending event are read from the database at scrape time (see
 * readOutboxGauges).
 */
export function metricsRoutes(metrics: Metrics, database: Database): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/metrics', async (c) => {
    try {
      const row = await readOutboxGauges(database);
      metrics.outboxDepth.set(row?.depth ?? 0);
      metrics.outboxPendingEvents.set(row?.events ?? 0);
      metrics.outboxOldestAge.set(row?.oldest ? Math.max(0, (Date.now() - row.oldest.getTime()) / 1000) : 0);
    } catch {
      // A scrape during a database outage still returns the process's counters.
    }
    return c.text(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType });
  });
  return app;
}
