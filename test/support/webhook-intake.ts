import type { Database } from '../../src/db/client';
import { openDatabase } from '../../src/db/client';
import type { MappingSet } from '../../src/mapping/mapping-set';
import type { EventDisposition, SourceName } from '../../src/core/event';
import type { TestApp } from './app';
import { createTestDatabase } from './db';
import { fixtureJson, vendorRequest } from './webhooks';

/** Shared by the webhook intake's test files (src/http/routes/webhooks-*.test.ts). Test-only. */

/** Intake only asks the mappings what to do with an event type; these tests pin that answer. */
export const DISPOSITIONS: Record<string, EventDisposition> = {
  'enreach/QueueStatus': 'ignore',
  'ucontact/AgentLog': 'ignore',
  'webex-cc/agent:state_change': 'drop',
};
export const stubMappings: MappingSet = {
  classify: (source, eventType) => DISPOSITIONS[`${source}/${eventType}`] ?? 'sync',
  fold: () => Promise.reject(new Error('not used by intake')),
  toCrm: () => Promise.reject(new Error('not used by intake')),
};

/** The rows intake stored in webhook_events, oldest first. */
export const storedEvents = (database: Database) =>
  database.query<{
    source: string;
    event_type: string;
    dedupe_key: string;
    call_key: string;
    vendor_time: Date | null;
    vendor_time_raw: string | null;
    received_at: Date;
    raw_body: string;
    payload: unknown;
    headers: Record<string, string>;
    status: string;
    attempts: number;
  }>('SELECT * FROM webhook_events ORDER BY id');

/** The calls intake queued in call_syncs, oldest first. */
export const storedCalls = (database: Database) =>
  database.query<{ source: string; call_key: string; status: string; version: number }>(
    'SELECT source, call_key, status, version FROM call_syncs ORDER BY id',
  );

export function exact(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** A realistic, unique event of each source (fixture with a per-index id). */
export function distinctRequest(source: SourceName, i: number): { path: string; init: RequestInit } {
  switch (source) {
    case 'genesys-ocs': {
      const body = { ...fixtureJson(source, 'contact-processed-answered.json'), GSW_MESSAGE_GUID: `msg-${i}`, GSW_CALL_ATTEMPT_GUID: `att-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'enreach': {
      const body = { ...fixtureJson(source, 'QueueCallInArrived.json'), Id: `id-${i}`, CallId: `call-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'ucontact': {
      const body = { ...fixtureJson(source, 'FinishInteraction.json'), guid: `guid-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'hcc': {
      const body = { ...fixtureJson(source, 'call-ended.json'), call_id: 50_000 + i };
      return vendorRequest(source, JSON.stringify(body), { hccEvent: 'call-ended' });
    }
    case 'webex-cc': {
      const base = fixtureJson(source, 'task_connected.json') as { data: Record<string, unknown> };
      const body = { ...base, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, data: { ...base.data, taskId: `task-${i}` } };
      return vendorRequest(source, JSON.stringify(body));
    }
  }
}

const unreachable = new Map<string, Promise<Database>>();

/** A database that cannot answer: nothing listens on port 1 (Postgres), or a closed PGlite. */
export function unreachableDatabase(kind: 'pglite' | 'postgres'): Promise<Database> {
  let db = unreachable.get(kind);
  if (!db) {
    db =
      kind === 'postgres'
        ? openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', poolSize: 1 })
        : createTestDatabase('pglite').then(async (t) => {
            await t.drop();
            return t.database;
          });
    unreachable.set(kind, db);
  }
  return db;
}

export async function metricValue(t: TestApp, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await t.metrics.registry.getSingleMetric(name)?.get();
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}
