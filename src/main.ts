import { serve, type ServerType } from '@hono/node-server';
import { loadConfigOrExit, ROLES, type Config, type Role } from './config';
import { createCrmTarget, type CrmTarget } from './crm';
import { openDatabase, type Database } from './db/client';
import { runMigrations } from './db/run-migrations';
import { errorMessage } from './core/errors';
import { createApp } from './http/app';
import { createLogger, type Logger } from './log';
import { MappingStore, formatMappingErrors } from './mapping';
import { Metrics } from './metrics';
import { IngestQueue } from './outbox/ingest';
import { SOURCES, sourceTimeZones } from './sources';
import { RetentionJob } from './worker/retention-schedule';
import { SyncWorker } from './worker/loop';
import { mountAdmin } from './admin';

/**
 * The service. `--role=all` (default, `npm start`) runs the webhook receiver
 * and the sync worker in one process; `--role=web` and `--role=worker` run
 * them apart against one Postgres, so each scales on its own.
 */
async function main(): Promise<void> {
  const config = loadConfigOrExit();
  const role = roleFromArgs(process.argv.slice(2)) ?? config.ROLE;
  const logger = createLogger({ level: config.LOG_LEVEL });
  if (role !== 'all' && !config.DATABASE_URL) {
    // The embedded database belongs to one process: a receiver and a worker
    // started apart would each have their own, and nothing received would
    // ever be synced.
    logger.fatal({ role }, `--role=${role} runs part of the service against a shared Postgres: set DATABASE_URL, or run --role=all (npm start) on the embedded database`);
    process.exit(1);
  }
  logger.info({ role, database: config.DATABASE_URL ? 'postgres' : `pglite (${config.DATA_DIR})` }, 'starting');

  // Mapping files first: a bad edit stops start-up before the database is touched.
  const opened = await MappingStore.open({
    dir: config.MAPPINGS_DIR,
    defaultRegion: config.DEFAULT_PHONE_REGION,
    timeZones: sourceTimeZones(config),
    logger,
  });
  if (!opened.ok) {
    const text = formatMappingErrors(opened.errors);
    logger.fatal({ errors: text.split('\n') }, 'invalid mapping files');
    process.stderr.write(`Invalid mapping files:\n${text}\n`);
    process.exit(1);
  }
  const mappings = opened.store;

  let database: Database;
  try {
    database = await openDatabase({ databaseUrl: config.DATABASE_URL, dataDir: config.DATA_DIR, poolSize: config.DATABASE_POOL_SIZE });
    await runMigrations(database);
  } catch (err) {
    logger.fatal({ err: errorMessage(err) }, 'cannot open or migrate the database');
    process.exit(1);
  }

  if (config.MAPPINGS_WATCH) mappings.start();

  const metrics = new Metrics({ defaultMetrics: true });
  const stops: Array<() => Promise<void>> = [];

  const runsWeb = role === 'all' || role === 'web';
  const runsWorker = role === 'all' || role === 'worker';

  let target: CrmTarget | undefined;
  try {
    target = runsWorker ? await createCrmTarget(config, logger) : undefined;
  } catch (err) {
    logger.fatal({ err: errorMessage(err) }, `cannot set up the ${config.crmTarget} target`);
    await database.close();
    process.exit(1);
  }
  if (runsWorker && target) {
    const worker = new SyncWorker({ database, mappings, target, config, logger, metrics });
    const retention = new RetentionJob(
      database,
      { days: config.RETENTION_DAYS, intervalMs: 10 * 60_000, batchSize: 1_000, pauseMs: 200 },
      logger,
    );
    await worker.start();
    retention.start();
    stops.push(async () => {
      // The worker's deadline runs now, not after a retention batch ends.
      await Promise.all([worker.stop(config.WORKER_SHUTDOWN_MS), retention.stop()]);
      await target.close?.();
    });
  }

  const ingest = new IngestQueue(
    database,
    { maxBatch: config.INGEST_BATCH_MAX, maxInFlight: config.INGEST_MAX_IN_FLIGHT, timeoutMs: 10_000 },
    logger,
    metrics,
  );
  const app = createApp({
    config,
    database,
    logger,
    metrics,
    ingest,
    mappings,
    webhooks: runsWeb,
    // The admin lives with the receiver; a worker-only process serves health and metrics.
    ...(runsWeb ? { mount: (root: Parameters<typeof mountAdmin>[0]) => mountAdmin(root, { config, database, logger, mappings, target }) } : {}),
  });
  const server = await listen(app.fetch, config, logger);
  stops.unshift(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await ingest.drain();
  });

  if (runsWeb) logEnabledSources(config, logger);
  logger.info({ port: config.PORT, role, target: target?.name }, 'ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const hardStop = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.WORKER_SHUTDOWN_MS + 10_000);
    hardStop.unref();
    try {
      // The receiver and the worker stop side by side, so the worker's
      // deadline runs from the signal, as the hard stop above does; one
      // failing to stop does not cut the other short.
      const results = await Promise.allSettled(stops.map((stop) => stop()));
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
      await mappings.stop();
      await database.close();
      logger.info('stopped');
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'error during shutdown');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

function roleFromArgs(args: string[]): Role | undefined {
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    const value = arg.startsWith('--role=') ? arg.slice('--role='.length) : arg === '--role' ? args[i + 1] : undefined;
    if (value === undefined) continue;
    if ((ROLES as readonly string[]).includes(value)) return value as Role;
    process.stderr.write(`Invalid --role '${value}'; expected one of ${ROLES.join(', ')}\n`);
    process.exit(1);
  }
  return undefined;
}

function listen(fetch: (request: Request) => Response | Promise<Response>, config: Config, logger: Logger): Promise<ServerType> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port: config.PORT, hostname: config.HOST }, () => resolve(server));
    server.once('error', (err) => {
      logger.fatal({ err: errorMessage(err) }, `cannot listen on ${config.HOST}:${config.PORT}`);
      reject(err);
    });
  });
}

function logEnabledSources(config: Config, logger: Logger): void {
  const enabled = Object.values(SOURCES).filter((s) => s.enabled(config)).map((s) => s.name);
  const disabled = Object.values(SOURCES).filter((s) => !s.enabled(config)).map((s) => s.name);
  logger.info({ enabled, disabled }, enabled.length > 0 ? 'webhook sources enabled' : 'no webhook source has a secret configured; every webhook will be refused with 401');
}

main().catch((err: unknown) => {
  process.stderr.write(`Fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
