import path from 'node:path';
import { expect } from 'vitest';
import type { Database } from '../../src/db/client';
import { loadMappings } from '../../src/mapping';
import type { MappingSet } from '../../src/mapping/mapping-set';
import type { CrmFieldValue } from '../../src/core/crm-record';
import { loadEvents } from '../../src/outbox/load-events';
import { startFakeSalesforce, type FakeSalesforce, type SObject } from '../fakes/salesforce';
import { buildTestApp, type TestApp } from '../support/app';
import { createTestDatabase, type TestDatabase } from '../support/db';
import { fixtureJson, vendorRequest } from '../support/webhooks';
import { ROOT, WorkerFleet, waitUntil } from './harness';

/**
 * What every reliability scenario shares: a fresh Postgres database, the
 * fake Salesforce org served over HTTP (seeded with the Contact, User and
 * Account the HCC fixtures point at), worker processes configured for both,
 * webhooks posted through the real intake route, and the checks of the
 * final state: one complete Task per call in the CRM, every row synced.
 */

export const SHIPPED_MAPPINGS = path.join(ROOT, 'mappings');
export const HCC_EVENTS = ['call-created', 'call-ended', 'call-saved'] as const;
export type HccEvent = (typeof HCC_EVENTS)[number];

/** One HCC call: the three fixture bodies with this call's id and figures. */
export interface HccCall {
  n: number;
  callKey: string;
  externalId: string;
  events: Array<{ hccEvent: HccEvent; body: Record<string, unknown> }>;
}

/**
 * Call `n` of a test: the fixtures' call-created, call-ended and call-saved
 * (seed 003), with a call id of its own and talk/wrap/duration figures that
 * differ per call and per event, so a Task built from some of the call's
 * events, or another call's, cannot pass for the right one.
 */
export function hccCall(n: number, edit: (event: HccEvent, body: Record<string, unknown>) => Record<string, unknown> = (_, b) => b): HccCall {
  const callId = 7_000_000 + n;
  const talk = 5 + (n % 40);
  const figures: Record<HccEvent, Record<string, unknown>> = {
    'call-created': {},
    'call-ended': { talk_time: talk },
    'call-saved': { talk_time: talk, call_duration: talk + 3 + (n % 5), wrap_time: 1 + (n % 7), billable_seconds: talk + 3 },
  };
  return {
    n,
    callKey: String(callId),
    externalId: `hcc:${callId}`,
    events: HCC_EVENTS.map((hccEvent) => ({
      hccEvent,
      body: edit(hccEvent, { ...fixtureJson('hcc', `${hccEvent}.json`), call_id: callId, ...figures[hccEvent] }),
    })),
  };
}

export function range(count: number, from = 1): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

/** The Contact, User and Account the HCC fixtures refer to (phone 9725550138, agent 19, account 12345678). */
export interface Org {
  contactId: string;
  ownerId: string;
  accountId: string;
}

function seedOrg(fake: FakeSalesforce): Org {
  return {
    contactId: fake.addContact({ FirstName: 'Dana', LastName: 'Customer', Phone: '(972) 555-0138' }),
    ownerId: fake.addUser({ Email: 'maria.lopez@example.com', LastName: 'Lopez' }),
    accountId: fake.addAccount({ Name: 'Acme', AccountNumber: '12345678' }),
  };
}

export interface Scenario {
  testDb: TestDatabase;
  database: Database;
  fake: FakeSalesforce;
  org: Org;
  mappings: MappingSet;
  fleet: WorkerFleet;
  /** Posts webhooks through the real intake route (auth, identify, classify, outbox insert), all at once. */
  post(events: HccCall['events']): Promise<void>;
  close(): Promise<void>;
}

/**
 * Sets everything up. `workerEnv`: the SYNC_* knobs (and anything else) every
 * worker of the scenario gets; MAPPINGS_DIR defaults to the shipped mappings.
 */
export async function openScenario(workerEnv: Record<string, string> = {}): Promise<Scenario> {
  const testDb = await createTestDatabase('postgres');
  let fake: FakeSalesforce | undefined;
  try {
    const url = testDb.url;
    if (url === undefined) throw new Error('a Postgres test database has a URL');
    const started = await startFakeSalesforce();
    fake = started.fake;
    const mappingsDir = workerEnv.MAPPINGS_DIR ?? SHIPPED_MAPPINGS;
    const loaded = await loadMappings({ dir: mappingsDir, defaultRegion: 'US', timeZones: { hcc: 'UTC' } });
    if (!loaded.ok) throw new Error(`mappings in ${mappingsDir} do not load: ${JSON.stringify(loaded.errors)}`);
    return assemble(testDb, started.fake, loaded.set, new WorkerFleet({ DATABASE_URL: url, ...started.env, ...workerEnv }));
  } catch (err) {
    // Half set up: give back what was taken before reporting.
    await fake?.close();
    await testDb.drop();
    throw err;
  }
}

function assemble(testDb: TestDatabase, fake: FakeSalesforce, mappings: MappingSet, fleet: WorkerFleet): Scenario {
  const org = seedOrg(fake);
  const intake: TestApp = buildTestApp({ database: testDb.database, mappings });
  return {
    testDb,
    database: testDb.database,
    fake,
    org,
    mappings,
    fleet,
    async post(events) {
      const answers = await Promise.all(
        events.map(async ({ hccEvent, body }) => {
          const { path: target, init } = vendorRequest('hcc', JSON.stringify(body), { hccEvent });
          const response = await intake.app.request(target, init);
          return response.status === 200 ? undefined : `${target}: ${response.status} ${await response.text()}`;
        }),
      );
      const refused = answers.filter((a) => a !== undefined);
      if (refused.length > 0) throw new Error(`intake refused ${refused.length} webhooks, first: ${refused[0]}`);
    },
    async close() {
      // Workers first, whatever happens next: they must not outlive the test.
      try {
        await fleet.killAll();
        await intake.ingest.drain();
      } finally {
        await fake.close();
        await testDb.drop();
      }
    },
  };
}

// ------------------------------------------------------------------ database

export type CallRow = {
  call_key: string;
  status: string;
  version: number;
  synced_version: number | null;
  attempts: number;
  crm_id: string | null;
  locked_by: string | null;
  last_error: string | null;
  last_error_kind: string | null;
  activity: { eventIds?: number[] } | null;
};

export async function callRows(database: Database): Promise<CallRow[]> {
  return database.query<CallRow>(
    `SELECT call_key, status, version, synced_version, attempts, crm_id, locked_by, last_error, last_error_kind, activity
     FROM call_syncs ORDER BY id`,
  );
}

export async function eventStatusCounts(database: Database): Promise<Record<string, number>> {
  const rows = await database.query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM webhook_events GROUP BY status');
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

export type AttemptRow = {
  call_key: string;
  attempt: number;
  worker_id: string;
  started_at: Date;
  outcome: string;
  error_kind: string | null;
  error: string | null;
  http_status: number | null;
};

export async function attemptRows(database: Database): Promise<AttemptRow[]> {
  return database.query<AttemptRow>(
    `SELECT c.call_key, a.attempt, a.worker_id, a.started_at, a.outcome, a.error_kind, a.error, a.http_status
     FROM sync_attempts a JOIN call_syncs c ON c.id = a.call_sync_id ORDER BY a.id`,
  );
}

/** How the calls stand, for timeout messages. */
export async function progress(database: Database): Promise<string> {
  const calls = await database.query<{ status: string; leased: boolean; n: number }>(
    `SELECT status, locked_until > now() AS leased, count(*)::int AS n FROM call_syncs GROUP BY 1, 2 ORDER BY 1, 2`,
  );
  return `calls ${JSON.stringify(calls)}, events ${JSON.stringify(await eventStatusCounts(database))}`;
}

/**
 * Waits until `expected` calls exist and none is pending any more (each is
 * synced with every event it has, or failed), then lets the workers' last
 * statements land.
 */
export async function waitSettled(scenario: Scenario, expected: number, timeoutMs: number): Promise<void> {
  await waitUntil(
    async () => {
      const [row] = await scenario.database.query<{ total: number; settled: number }>(
        `SELECT count(*)::int AS total,
                count(*) FILTER (WHERE (status = 'synced' AND synced_version = version) OR status = 'failed')::int AS settled
         FROM call_syncs`,
      );
      return row !== undefined && row.total === expected && row.settled === expected;
    },
    {
      timeoutMs,
      intervalMs: 100,
      describe: async () => `${await progress(scenario.database)}\n${scenario.fleet.outputs()}`,
    },
  );
}

// ---------------------------------------------------------------- outcomes

/** The Task fields the mappings give for every event stored for this call: what the CRM must hold. */
export async function expectedTaskFields(scenario: Scenario, call: HccCall): Promise<Record<string, CrmFieldValue>> {
  const events = (await loadEvents(scenario.database, [{ source: 'hcc', callKey: call.callKey }])).get(`hcc\u0000${call.callKey}`) ?? [];
  const activity = await scenario.mappings.fold('hcc', call.callKey, events);
  const record = (await scenario.mappings.toCrm(activity, 'salesforce')).find((r) => r.kind === 'activity');
  if (record === undefined) throw new Error(`no Salesforce activity record for ${call.externalId}`);
  return record.fields;
}

/** Tasks by external id. */
export function tasksByExternalId(fake: FakeSalesforce): Map<string, SObject[]> {
  const out = new Map<string, SObject[]>();
  for (const task of fake.tasks()) {
    const id = String(task[fake.externalIdField]);
    out.set(id, [...(out.get(id) ?? []), task]);
  }
  return out;
}

/**
 * Every call delivered exactly once: the CRM holds one Task per call and no
 * other, each with the fields of all the call's events (the fold of every
 * stored event), linked to the right Contact, owner and Account; in the
 * database every call is synced with its latest version, knows its Task, and
 * recorded every event it folded; no event is left pending.
 */
export async function expectDeliveredExactlyOnce(scenario: Scenario, calls: HccCall[]): Promise<void> {
  const { fake, database, org } = scenario;
  const tasks = tasksByExternalId(fake);
  const duplicated = [...tasks].filter(([, list]) => list.length > 1).map(([id, list]) => `${id} x${list.length}`);
  expect(duplicated, 'external ids with more than one Task').toEqual([]);
  expect([...tasks.keys()].sort()).toEqual(calls.map((c) => c.externalId).sort());

  const rows = new Map((await callRows(database)).map((r) => [r.call_key, r]));
  const events = await database.query<{ call_key: string; ids: number[]; statuses: string[] }>(
    `SELECT call_key, array_agg(id ORDER BY id)::int[] AS ids, array_agg(status ORDER BY id) AS statuses
     FROM webhook_events WHERE source = 'hcc' GROUP BY call_key`,
  );
  const eventsByCall = new Map(events.map((r) => [r.call_key, r]));
  for (const call of calls) {
    const task = tasks.get(call.externalId)?.[0];
    const row = rows.get(call.callKey);
    const stored = eventsByCall.get(call.callKey);
    expect(row, call.externalId).toMatchObject({ status: 'synced', crm_id: task?.Id, locked_by: null });
    expect(row?.synced_version, call.externalId).toBe(row?.version);
    expect(stored?.statuses, call.externalId).toEqual(HCC_EVENTS.map(() => 'synced'));
    // eventIds lists them in fold order; which ones is what matters here.
    expect([...(row?.activity?.eventIds ?? [])].sort((a, b) => a - b), `${call.externalId}: the events folded into the synced activity`).toEqual(stored?.ids);
    const saved = call.events.find((e) => e.hccEvent === 'call-saved')?.body;
    expect(task, call.externalId).toMatchObject({
      ...(await expectedTaskFields(scenario, call)),
      // Spelled out too, so a fold that lost events could not set the bar it is measured by:
      // only call-saved makes the call final and carries its disposition and duration.
      Status: 'Completed',
      CallDisposition: 'Sale',
      CallDurationInSeconds: saved?.['call_duration'],
      WhoId: org.contactId,
      OwnerId: org.ownerId,
      WhatId: org.accountId,
    });
  }
  expect((await eventStatusCounts(database))['pending'] ?? 0, 'events left pending').toBe(0);
}
