import { testConfig } from './config';
import { MappingError } from '../../src/core/errors';
import { emptyActivity, type CallActivity } from '../../src/core/activity';
import { type StoredEvent } from '../../src/core/event';
import { createLogger } from '../../src/log';
import { type MappingSet } from '../../src/mapping/mapping-set';
import { Metrics } from '../../src/metrics';
import { IngestQueue } from '../../src/outbox/ingest';
import { type NewEvent } from '../../src/outbox/insert-events';
import { SyncWorker, type WorkerConfig } from '../../src/worker/loop';
import { createTestDatabase, type TestDatabase, type TestDbKind } from './db';
import { MemoryTarget } from './memory-target';

/**
 * Shared setup of the sync worker tests (src/worker/loop-*.test.ts): the
 * worker's mechanics with a stub mapping (one field per event type seen)
 * and an interface-level target. The real mappings and CRM targets are
 * exercised end to end in test/reliability/ (worker processes against the
 * Salesforce fake) and test/start.e2e.test.ts.
 */
export const stubMappings: MappingSet = {
  classify: () => 'sync',
  async fold(source, callKey, events) {
    if (events.some((e) => (e.payload as { poison?: boolean }).poison)) throw new MappingError('field "x": boom');
    return activityOf(source, callKey, events);
  },
  async toCrm(activity) {
    return [
      {
        kind: 'activity',
        object: 'Task',
        externalId: activity.externalId,
        fields: { Subject: activity.notes, CallObject: activity.callKey },
        createOnly: ['TaskSubtype'],
        lookups: {},
      },
    ];
  },
};

function activityOf(source: StoredEvent['source'], callKey: string, events: StoredEvent[]): CallActivity {
  const sorted = [...events].sort((a, b) => a.id - b.id);
  return { ...emptyActivity(source, callKey), notes: sorted.map((e) => e.eventType).join(','), eventIds: sorted.map((e) => e.id) };
}

export function workerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  const c = testConfig();
  return {
    SYNC_MAX_ATTEMPTS: 3,
    SYNC_BACKOFF_BASE_MS: 60_000,
    SYNC_BACKOFF_MAX_MS: 3_600_000,
    SYNC_LEASE_SECONDS: c.SYNC_LEASE_SECONDS,
    SYNC_POLL_MS: 60_000,
    SYNC_BATCH_WAIT_MS: 0,
    WORKER_CONCURRENCY: 2,
    WORKER_SHUTDOWN_MS: 2_000,
    ...overrides,
  };
}

/**
 * One test database with an ingest queue, a memory target and the workers a
 * test starts. The test file calls open/close in beforeAll/afterAll and
 * reset/stopWorkers in beforeEach/afterEach.
 */
export class SyncWorkerHarness {
  testDb!: TestDatabase;
  ingest!: IngestQueue;
  target!: MemoryTarget;
  metrics!: Metrics;
  readonly logger = createLogger({ level: 'silent' });
  readonly workers: SyncWorker[] = [];
  private seq = 0;

  async open(kind: TestDbKind): Promise<TestDatabase> {
    this.testDb = await createTestDatabase(kind);
    return this.testDb;
  }

  async close(): Promise<void> {
    await this.testDb.drop();
  }

  /** Empties the tables and gives the test a fresh queue, target and metrics. */
  async reset(): Promise<{ ingest: IngestQueue; target: MemoryTarget; metrics: Metrics }> {
    await this.testDb.database.query('TRUNCATE webhook_events, call_syncs, sync_attempts RESTART IDENTITY CASCADE');
    this.metrics = new Metrics();
    this.ingest = new IngestQueue(this.testDb.database, { maxBatch: 500, maxInFlight: 2, timeoutMs: 5_000 }, this.logger, this.metrics);
    this.target = new MemoryTarget();
    return { ingest: this.ingest, target: this.target, metrics: this.metrics };
  }

  async stopWorkers(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.stop(1_000)));
  }

  worker = (overrides: Partial<WorkerConfig> = {}, extra: { target?: MemoryTarget; mappings?: MappingSet } = {}): SyncWorker => {
    const w = new SyncWorker({
      database: this.testDb.database,
      mappings: { current: () => extra.mappings ?? stubMappings },
      target: extra.target ?? this.target,
      config: workerConfig(overrides),
      logger: this.logger,
      metrics: this.metrics,
    });
    this.workers.push(w);
    return w;
  };

  event = (callKey: string, eventType: string, payload: Record<string, unknown> = {}): NewEvent => {
    this.seq += 1;
    const seq = this.seq;
    const body = { callKey, eventType, seq, ...payload };
    return {
      source: 'hcc',
      eventType,
      dedupeKey: `${eventType}:${callKey}:${seq}`,
      callKey,
      vendorTime: null,
      vendorTimeRaw: null,
      receivedAt: new Date(),
      rawBody: JSON.stringify(body),
      payload: body,
      headers: {},
      status: 'pending',
    };
  };

  callRow = async (callKey: string) =>
    (
      await this.testDb.database.query<{
        status: string;
        attempts: number;
        next_attempt_at: Date;
        crm_id: string | null;
        last_error: string | null;
        last_error_kind: string | null;
        last_http_status: number | null;
        last_response: unknown;
        locked_by: string | null;
        activity: { notes: string } | null;
        crm_payload: unknown;
      }>('SELECT * FROM call_syncs WHERE call_key = $1', [callKey])
    )[0];

  eventStatuses = async (callKey: string) =>
    (await this.testDb.database.query<{ status: string }>('SELECT status FROM webhook_events WHERE call_key = $1 ORDER BY id', [callKey])).map(
      (r) => r.status,
    );

  attemptsOf = async (callKey: string) =>
    this.testDb.database.query<{ attempt: number; outcome: string; error_kind: string | null; http_status: number | null }>(
      `SELECT a.attempt, a.outcome, a.error_kind, a.http_status FROM sync_attempts a JOIN call_syncs c ON c.id = a.call_sync_id
       WHERE c.call_key = $1 ORDER BY a.id`,
      [callKey],
    );
}
