import { Hono } from 'hono';
import type { Database } from '../../db/client';
import type { Metrics } from '../../metrics';
import type { AppEnv } from '../context';

/**
 * GET /metrics in Prometheus text format. Outbox depth and the age of the
 * oldest pending event are read from the database at scrape time: they are
 * facts about the shared table, not about this process.
 */
export function metricsRoutes(metrics: Metrics, database: Database): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/metrics', async (c) => {
    try {
      // version - synced_version: the events a call received since its last sync.
      const [row] = await database.query<{ depth: number; events: number; oldest: Date | null }>(
        `SELECT count(*)::int AS depth, COALESCE(sum(version - synced_version), 0)::int AS events, min(pending_since) AS oldest
         FROM call_syncs WHERE status = 'pending'`,
      );
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
