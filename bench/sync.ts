import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../src/config';
import { openDatabase, type Database } from '../src/db/client';
import { runMigrations } from '../src/db/run-migrations';
import { createLogger } from '../src/log';
import { loadMappings } from '../src/mapping';
import type { MappingSet } from '../src/mapping/mapping-set';
import { IngestQueue } from '../src/outbox/ingest';
import { type NewEvent } from '../src/outbox/insert-events';
import { SOURCES } from '../src/sources';
import type { SourceName } from '../src/core/event';
import { startFakeSalesforce, type StartedFakeSalesforce } from '../test/fakes/salesforce';
import { fixturePath } from '../test/support/source-files';
import { SECRETS, requestFactory } from './requests';
import { ROOT, freePort, freshDatabase, sampleRss, startBundledService, stopProcess, waitReady } from './util';

/**
 * npm run bench:sync
 *
 * The sync worker against a simulated Salesforce (test/fakes/salesforce.ts
 * served over HTTP) that answers every request in 50 ms, on real Postgres.
 * Workers are the bundled service (`--role=worker`), started as
 * `npm run start:worker` would. Prints:
 *  (a) call activities/s under a sustained load of new calls, and CRM
 *      requests per activity at that load;
 *  (b) webhook accepted -> CRM write latency (p50, p95) at 200 webhooks/s
 *      through a receiver process;
 *  (c) drain of a 100,000-event backlog: events/s and the worker's peak RSS;
 *  (d) a backlog drained by two worker processes vs one, each worker
 *      bound by its CRM round trips (one request in flight).
 *
 * BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
 * BENCH_BACKLOG_EVENTS (100000), BENCH_LOAD_SECONDS (20), BENCH_LOAD_CALLS_PER_S (1200).
 */
const CRM_LATENCY_MS = 50;
const BACKLOG_EVENTS = Number(process.env.BENCH_BACKLOG_EVENTS ?? 100_000);
const LOAD_SECONDS = Number(process.env.BENCH_LOAD_SECONDS ?? 20);
const LOAD_CALLS_PER_S = Number(process.env.BENCH_LOAD_CALLS_PER_S ?? 1_200);
const LATENCY_SECONDS = 20;
const LATENCY_RATE = 200;
/** Customer numbers cycle through this pool; half of them are Contacts in the fake org. */
const PHONE_POOL = 5_000;
const AGENTS = ['jane.doe@example.com', 'maria.lopez@example.com', 'sample.agent@customer.com', 'agent.smith@example.com'];

const logger = createLogger({ level: 'warn' });
const config = parseConfig({ ...SECRETS, LOG_LEVEL: 'warn' });
const fixture = (source: SourceName, name: string) =>
  JSON.parse(readFileSync(fixturePath(source, name), 'utf8')) as Record<string, unknown>;

// ---------------------------------------------------------------------------
// Realistic calls: the fixtures' event sequences of each source, with ids and
// customer numbers varied per call.

interface CallTemplate {
  source: SourceName;
  events: Array<{ body: Record<string, unknown>; hccEvent?: string }>;
  vary: (body: Record<string, unknown>, n: number, phone: string) => Record<string, unknown>;
}

const phoneOf = (n: number) => `+1312555${String(1000 + (n % PHONE_POOL)).padStart(4, '0')}`;

const TEMPLATES: CallTemplate[] = [
  {
    source: 'hcc',
    events: ['call-created', 'call-ended', 'call-saved'].map((e) => ({ body: fixture('hcc', `${e}.json`), hccEvent: e })),
    vary: (b, n, phone) => ({ ...b, call_id: 5_000_000 + n, phone: phone.slice(2) }),
  },
  {
    source: 'webex-cc',
    events: ['task_new', 'task_connected', 'task_ended'].map((e) => ({ body: fixture('webex-cc', `${e}.json`) })),
    vary: (b, n, phone) => {
      const data = b.data as Record<string, unknown>;
      return { ...b, id: `${String(b.id)}-${n}`, data: { ...data, taskId: `bench-task-${n}`, origin: data.direction === 'INBOUND' ? phone : data.origin, destination: data.direction === 'INBOUND' ? data.destination : phone } };
    },
  },
  {
    source: 'genesys-ocs',
    events: [{ body: fixture('genesys-ocs', 'contact-processed-answered.json') }],
    vary: (b, n, phone) => ({ ...b, GSW_MESSAGE_GUID: `bench-msg-${n}`, GSW_CALL_ATTEMPT_GUID: `bench-att-${n}`, GSW_PHONE: phone, GSW_AGENT_ID: AGENTS[n % AGENTS.length] }),
  },
  {
    source: 'enreach',
    events: ['QueueCallInArrived', 'QueueCallInUserConnected', 'QueueCallInDisconnected'].map((e) => ({ body: fixture('enreach', `${e}.json`) })),
    vary: (b, n, phone) => ({ ...b, Id: `${String(b.Id)}-${n}`, CallId: `bench-call-${n}`, CallerNumber: phone }),
  },
  {
    source: 'ucontact',
    events: ['FinishInteraction', 'InteractionDisposition'].map((e) => ({ body: fixture('ucontact', `${e}.json`) })),
    vary: (b, n, phone) => ({ ...b, guid: `bench-guid-${n}`, callerIdNum: phone }),
  },
];

function callEvents(n: number, mappings: MappingSet, receivedAt: Date): NewEvent[] {
  const template = TEMPLATES[n % TEMPLATES.length] as CallTemplate;
  const phone = phoneOf(n);
  return template.events.map(({ body, hccEvent }) => {
    const json = template.vary(body, n, phone);
    const rawBody = JSON.stringify(json);
    const headers: Record<string, string> = template.source === 'enreach' ? { 'x-benemen-event': String(json.EventType) } : {};
    const who = SOURCES[template.source].identify(
      { rawBody, json, headers, params: hccEvent ? { event: hccEvent } : {}, query: new URLSearchParams(), receivedAt },
      config,
    );
    return {
      source: template.source,
      eventType: who.eventType,
      dedupeKey: who.dedupeKey,
      callKey: who.callKey ?? `event:${who.dedupeKey}`,
      vendorTime: who.vendorTime,
      vendorTimeRaw: who.vendorTimeRaw,
      receivedAt,
      rawBody,
      payload: json,
      headers,
      status: mappings.classify(template.source, who.eventType) === 'sync' ? 'pending' : 'ignored',
    };
  });
}

// ---------------------------------------------------------------------------

interface Env {
  database: Database;
  url: string;
  drop: () => Promise<void>;
  crm: StartedFakeSalesforce;
  ingest: IngestQueue;
  mappings: MappingSet;
}

async function setUp(): Promise<Env> {
  const db = await freshDatabase('callsync_bench_sync');
  const database = await openDatabase({ databaseUrl: db.url, poolSize: 4 });
  await runMigrations(database);
  const crm = await startFakeSalesforce({ latencyMs: CRM_LATENCY_MS });
  for (let i = 0; i < PHONE_POOL; i += 2) crm.fake.addContact({ LastName: `Customer ${i}`, Phone: phoneOf(i) });
  for (const email of AGENTS) crm.fake.addUser({ Email: email, Username: email, LastName: email.split('@')[0] ?? email, IsActive: true });
  const loaded = await loadMappings({ dir: path.join(ROOT, 'mappings'), defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
  if (!loaded.ok) throw new Error('mappings do not load');
  const ingest = new IngestQueue(database, { maxBatch: 500, maxInFlight: 2, timeoutMs: 30_000 }, logger);
  return { database, url: db.url, drop: db.drop, crm, ingest, mappings: loaded.set };
}

async function tearDown(env: Env): Promise<void> {
  await env.database.close();
  await env.crm.fake.close();
  await env.drop();
}

function startWorker(env: Env, port: number, extra: Record<string, string> = {}): Promise<ChildProcess> {
  return startBundledService('worker', {
    ...SECRETS,
    ...env.crm.env,
    DATABASE_URL: env.url,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    MAPPINGS_WATCH: 'false',
    ...extra,
  });
}

async function insertBacklog(env: Env, events: number): Promise<{ calls: number; events: number }> {
  let inserted = 0;
  let calls = 0;
  const receivedAt = new Date();
  while (inserted < events) {
    const chunk: NewEvent[] = [];
    for (let i = 0; i < 200 && inserted + chunk.length < events; i += 1) chunk.push(...callEvents(calls++, env.mappings, receivedAt));
    await Promise.all(chunk.map((e) => env.ingest.submit(e)));
    inserted += chunk.length;
  }
  return { calls, events: inserted };
}

const count = async (db: Database, sql: string) => Number((await db.query<{ n: number }>(sql))[0]?.n ?? 0);
/** Calls not yet synced (pending, in retry, or being written): a cheap index scan, unlike counting events. */
const pendingCalls = (db: Database) => count(db, `SELECT count(*)::int AS n FROM call_syncs WHERE status = 'pending'`);
const pendingEvents = (db: Database) => count(db, `SELECT count(*)::int AS n FROM webhook_events WHERE status = 'pending'`);
const syncedCalls = (db: Database) => count(db, `SELECT count(*)::int AS n FROM call_syncs WHERE status = 'synced'`);

async function drain(
  env: Env,
  workers: number,
  label: string,
  extra: Record<string, string>,
): Promise<{ seconds: number; events: number; eventsPerSecond: number; rss: number }> {
  const backlog = await pendingEvents(env.database);
  const ports = await Promise.all(Array.from({ length: workers }, () => freePort()));
  const children = await Promise.all(ports.map((port) => startWorker(env, port, extra)));
  await Promise.all(ports.map((port) => waitReady(port)));
  const rss = children.map((c) => sampleRss(c.pid ?? 0));
  const started = performance.now();
  while ((await pendingCalls(env.database)) > 0) await new Promise((r) => setTimeout(r, 100));
  const seconds = (performance.now() - started) / 1000;
  const peak = Math.max(...rss.map((r) => r.stop()));
  await Promise.all(children.map((c) => stopProcess(c)));
  process.stdout.write(`  ${label}: ${backlog} events in ${seconds.toFixed(1)} s\n`);
  return { seconds, events: backlog, eventsPerSecond: backlog / seconds, rss: peak };
}

// ---------------------------------------------------------------------------

async function benchThroughput(): Promise<{ activitiesPerSecond: number; requestsPerActivity: number; offered: number }> {
  const env = await setUp();
  try {
    const port = await freePort();
    const worker = await startWorker(env, port);
    await waitReady(port);
    // Warm the lookup caches the way a running service has them.
    await insertBacklog(env, 3_000);
    while ((await pendingCalls(env.database)) > 0) await new Promise((r) => setTimeout(r, 100));
    env.crm.fake.resetCounters();
    const before = await syncedCalls(env.database);
    let n = 1_000_000;
    const started = performance.now();
    const deadline = started + LOAD_SECONDS * 1000;
    let offered = 0;
    // Feed LOAD_CALLS_PER_S new calls per second, in 100 ms steps.
    while (performance.now() < deadline) {
      const stepStart = performance.now();
      const events: NewEvent[] = [];
      for (let i = 0; i < LOAD_CALLS_PER_S / 10; i += 1) events.push(...callEvents(n++, env.mappings, new Date()));
      offered += LOAD_CALLS_PER_S / 10;
      await Promise.all(events.map((e) => env.ingest.submit(e)));
      const spent = performance.now() - stepStart;
      if (spent < 100) await new Promise((r) => setTimeout(r, 100 - spent));
    }
    // Activities synced during the window, including the tail still in flight.
    while ((await pendingCalls(env.database)) > 0 && performance.now() < deadline + 10_000) await new Promise((r) => setTimeout(r, 50));
    const seconds = (performance.now() - started) / 1000;
    const activities = (await syncedCalls(env.database)) - before;
    const requests = env.crm.fake.requests();
    await stopProcess(worker);
    return { activitiesPerSecond: activities / seconds, requestsPerActivity: requests / activities, offered: offered / LOAD_SECONDS };
  } finally {
    await tearDown(env);
  }
}

async function benchLatency(): Promise<{ p50: number; p95: number; samples: number; unsynced: number }> {
  const env = await setUp();
  try {
    const webPort = await freePort();
    const workerPort = await freePort();
    const web = await startBundledService('web', { ...SECRETS, DATABASE_URL: env.url, PORT: String(webPort), LOG_LEVEL: 'warn', MAPPINGS_WATCH: 'false' });
    const worker = await startWorker(env, workerPort);
    await Promise.all([waitReady(webPort), waitReady(workerPort)]);
    // One event per call here, so its write time is the record's creation.
    const next = requestFactory({ eventsPerCall: 1 });
    const accepted = new Map<string, number>();
    const started = Date.now();
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i < LATENCY_SECONDS * LATENCY_RATE; i += 1) {
      const due = started + (i * 1000) / LATENCY_RATE;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const req = next();
      pending.push(
        fetch(`http://127.0.0.1:${webPort}${req.path}`, { method: 'POST', headers: req.headers, body: req.body }).then(async (res) => {
          await res.arrayBuffer();
          // A re-delivery (the generator repeats 5 % of bodies) is the same
          // event: its latency runs from the first acceptance.
          if (res.status === 200 && !accepted.has(req.body)) accepted.set(req.body, Date.now());
        }),
      );
    }
    await Promise.all(pending);
    while ((await pendingCalls(env.database)) > 0) await new Promise((r) => setTimeout(r, 100));
    await Promise.all([stopProcess(web), stopProcess(worker)]);

    // Each accepted event's call was written when its Task was created.
    const rows = await env.database.query<{ raw_body: string; source: string; call_key: string }>(
      `SELECT raw_body, source, call_key FROM webhook_events WHERE status = 'synced'`,
    );
    const failed = await count(env.database, `SELECT count(*)::int AS n FROM webhook_events WHERE status <> 'synced'`);
    const latencies: number[] = [];
    for (const row of rows) {
      const acceptedAt = accepted.get(row.raw_body);
      const task = env.crm.fake.taskByExternalId(`${row.source}:${row.call_key}`);
      if (acceptedAt === undefined || task === undefined || typeof task.CreatedDate !== 'string') continue;
      latencies.push(Math.max(0, Date.parse(task.CreatedDate) - acceptedAt));
    }
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? NaN;
    return { p50: pct(50), p95: pct(95), samples: latencies.length, unsynced: failed };
  } finally {
    await tearDown(env);
  }
}

async function benchBacklog(
  events: number,
  workers: number,
  extra: Record<string, string> = {},
): Promise<{ eventsPerSecond: number; rss: number; requestsPerActivity: number }> {
  const env = await setUp();
  try {
    const backlog = await insertBacklog(env, events);
    const label = `${workers} worker${workers > 1 ? 's' : ''}${extra.WORKER_CONCURRENCY ? `, WORKER_CONCURRENCY=${extra.WORKER_CONCURRENCY}` : ''}`;
    const result = await drain(env, workers, label, extra);
    const requests = env.crm.fake.requests();
    return { eventsPerSecond: result.eventsPerSecond, rss: result.rss, requestsPerActivity: requests / backlog.calls };
  } finally {
    await tearDown(env);
  }
}

// ---------------------------------------------------------------------------

const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const ok = (pass: boolean) => (pass ? 'OK' : 'MISSED');

const PHASES = new Set((process.env.BENCH_PHASES ?? 'a,b,c,d').split(','));
if (PHASES.has('a')) {
process.stdout.write(`(a) sustained load: ${LOAD_CALLS_PER_S} new calls/s for ${LOAD_SECONDS} s, 1 worker, CRM answering in ${CRM_LATENCY_MS} ms\n`);
const a = await benchThroughput();
process.stdout.write(
  `    ${fmt(a.activitiesPerSecond)} call activities/s (offered ${fmt(a.offered)}), ${fmt(a.requestsPerActivity, 4)} CRM requests per activity  ` +
    `[>= 1000/s ${ok(a.activitiesPerSecond >= 1000)}, <= 0.02 ${ok(a.requestsPerActivity <= 0.02)}]\n`,
);

}
if (PHASES.has('b')) {
process.stdout.write(`(b) latency at ${LATENCY_RATE} webhooks/s for ${LATENCY_SECONDS} s (receiver + worker processes)\n`);
const b = await benchLatency();
process.stdout.write(
  `    accepted -> CRM write: p50 ${fmt(b.p50)} ms, p95 ${fmt(b.p95)} ms over ${b.samples} events (${b.unsynced} not synced)  [p95 <= 2000 ms ${ok(b.p95 <= 2000 && b.unsynced === 0)}]\n`,
);

}
if (PHASES.has('c')) {
process.stdout.write(`(c) backlog of ${BACKLOG_EVENTS} pending events, 1 worker\n`);
const c = await benchBacklog(BACKLOG_EVENTS, 1);
process.stdout.write(
  `    ${fmt(c.eventsPerSecond)} events/s, worker peak RSS ${fmt(c.rss)} MB, ${fmt(c.requestsPerActivity, 4)} CRM requests per activity  ` +
    `[>= 1000 events/s ${ok(c.eventsPerSecond >= 1000)}, RSS <= 300 MB ${ok(c.rss <= 300)}]\n`,
);

}
if (PHASES.has('d')) {
  // Scale-out pays where a worker waits on the CRM: each process here keeps
  // one request in flight, as a worker does when its CRM is the bottleneck.
  // (With the default WORKER_CONCURRENCY one process already saturates this
  // machine's Postgres, which shares the same 2 cores: see the last line.)
  // The (c) backlog size: long enough that each process's warm-up (JIT, cold lookup caches) is amortized.
  const events = BACKLOG_EVENTS;
  const bound = { WORKER_CONCURRENCY: '1' };
  process.stdout.write(`(d) ${events} pending events, CRM-bound workers (one request in flight each): 1 vs 2 worker processes\n`);
  const one = await benchBacklog(events, 1, bound);
  const two = await benchBacklog(events, 2, bound);
  const scale = two.eventsPerSecond / one.eventsPerSecond;
  process.stdout.write(
    `    1 worker ${fmt(one.eventsPerSecond)} events/s, 2 workers ${fmt(two.eventsPerSecond)} events/s: ${fmt(scale, 2)}x  [>= 1.6x ${ok(scale >= 1.6)}]\n`,
  );
  // The same at the default WORKER_CONCURRENCY, for the record: here one
  // process already keeps this machine's two cores busy (workers, Postgres
  // and the simulated CRM share them), so a second adds little.
  const oneDefault = await benchBacklog(events, 1);
  const twoDefault = await benchBacklog(events, 2);
  process.stdout.write(
    `    at the default concurrency: 1 worker ${fmt(oneDefault.eventsPerSecond)} events/s, 2 workers ${fmt(twoDefault.eventsPerSecond)} events/s: ` +
      `${fmt(twoDefault.eventsPerSecond / oneDefault.eventsPerSecond, 2)}x\n`,
  );
}

process.exit(0);
