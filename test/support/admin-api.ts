import type { Config } from '../../src/config';
import { SyncError } from '../../src/core/errors';
import type { Database } from '../../src/db/client';
import { createApp } from '../../src/http/app';
import { createLogger, type Logger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { IngestQueue } from '../../src/outbox/ingest';
import { mountAdmin } from '../../src/admin/index';
import { SyncWorker } from '../../src/worker/loop';
import { ADMIN_TOKEN, fastWorkerConfig, newEvent, type FixableMappings } from './admin';
import type { MemoryTarget } from './memory-target';

/** Shared by the admin API's test files (src/admin/api-*.test.ts). Test-only. */

export const logger = createLogger({ level: 'silent' });
/** What @hono/node-server passes as env: the socket the request came in on. */
export const CONN = { incoming: { socket: { remoteAddress: '203.0.113.7', remotePort: 50000, remoteFamily: 'IPv4' } } };
export const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}`, 'user-agent': 'admin-test/1.0' };

/** The app with the admin mounted, and the ingest queue it submits to. */
export function buildAdminApp(deps: {
  config: Config;
  database: Database;
  ingestDatabase: Database;
  log: Logger;
  mappings: FixableMappings;
  target: MemoryTarget;
}): { app: ReturnType<typeof createApp>; ingest: IngestQueue } {
  const { config: appConfig, database, log, mappings, target } = deps;
  const metrics = new Metrics();
  const ingest = new IngestQueue(deps.ingestDatabase, { maxBatch: 100, maxInFlight: 1, timeoutMs: 5_000 }, log, metrics);
  const app = createApp({
    config: appConfig,
    database,
    logger: log,
    metrics,
    ingest,
    mappings: { current: () => mappings },
    mount: (a) => mountAdmin(a, { config: appConfig, database, logger: log, mappings: { current: () => mappings }, target }),
  });
  return { app, ingest };
}

export function adminWorker(database: Database, mappings: FixableMappings, target: MemoryTarget): SyncWorker {
  return new SyncWorker({ database, mappings: { current: () => mappings }, target, config: fastWorkerConfig(), logger, metrics: new Metrics() });
}

export type CallOptions = { headers?: Record<string, string>; body?: unknown; raw?: string };

/** One authenticated request to the app, its body read as text and, when it is JSON, parsed. */
export async function adminCall(app: ReturnType<typeof createApp>, method: string, path: string, options: CallOptions = {}) {
  const headers: Record<string, string> = { ...AUTH, ...options.headers };
  let body: string | undefined;
  if (options.raw !== undefined) body = options.raw;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }, CONN);
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text.startsWith('{') || text.startsWith('[') ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/**
 * Real rows through intake and the worker: `good` synced, `bad` failed by
 * the mapping (an unknown disposition code), `slow` pending after a
 * transient CRM error.
 */
export async function adminScenario(ingest: IngestQueue, target: MemoryTarget, worker: () => SyncWorker, database: Database) {
  await Promise.all([
    ingest.submit(newEvent('good', 'call-created')),
    ingest.submit(newEvent('good', 'call-ended', { disposition: 'SALE' })),
    ingest.submit(newEvent('bad', 'call-created')),
    ingest.submit(newEvent('bad', 'call-ended', { disposition: 'NOSALE', phone: '+358501231234' })),
    ingest.submit(newEvent('slow', 'call-ended')),
  ]);
  target.inject((items) =>
    items.map((item) =>
      item.externalId === 'hcc:slow'
        ? { ok: false as const, error: new SyncError('transient', 'Service Unavailable', { httpStatus: 503, crmResponse: { message: 'down' } }) }
        : { ok: true as const, ids: { [item.externalId]: `crm-${item.externalId}` }, created: true, sent: { Subject: 'sent' } },
    ),
  );
  await worker().runOnce();
  const ids = await database.query<{ id: number; call_key: string }>('SELECT id, call_key FROM call_syncs ORDER BY id');
  const id = (key: string) => {
    const found = ids.find((r) => r.call_key === key);
    if (!found) throw new Error(`no call ${key}`);
    return found.id;
  };
  return { good: id('good'), bad: id('bad'), slow: id('slow') };
}
