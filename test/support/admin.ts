import type { Queryable } from '../../src/db/client';
import type { SyncStatus } from '../../src/db/schema';
import { testConfig } from './config';
import { type MappingSet } from '../../src/mapping/mapping-set';
import { MappingError } from '../../src/core/errors';
import { type CrmRecord } from '../../src/core/crm-record';
import { emptyActivity, type CallActivity } from '../../src/core/activity';
import { type EventDisposition, type StoredEvent } from '../../src/core/event';
import type { NewEvent } from '../../src/outbox/insert-events';
import type { SourceName } from '../../src/core/event';
import type { WorkerConfig } from '../../src/worker/loop';

/**
 * Test support for the admin's tests (not loaded by the service): a mapping
 * that can be "fixed" at runtime, event builders and direct row seeding.
 */

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

/**
 * A stand-in for the mapping layer with a RevOps-style bug: an event with a
 * disposition code the value table does not know fails the fold until
 * `fix()` adds it, exactly how a mapping fix reaches failed calls.
 */
export class FixableMappings implements MappingSet {
  private readonly labels = new Map<string, string>([['SALE', 'Sale']]);
  /** Event types RevOps set to `ignore`; every other type syncs. */
  private readonly ignoredTypes = new Set<string>();

  fix(code: string, label: string): void {
    this.labels.set(code, label);
  }

  ignore(eventType: string): void {
    this.ignoredTypes.add(eventType);
  }

  /** RevOps moves a type from `ignore` to `sync`. */
  sync(eventType: string): void {
    this.ignoredTypes.delete(eventType);
  }

  classify(_source: SourceName, eventType: string): EventDisposition {
    return this.ignoredTypes.has(eventType) ? 'ignore' : 'sync';
  }

  async fold(source: SourceName, callKey: string, events: StoredEvent[]): Promise<CallActivity> {
    // Like the real fold: only the event types the mappings sync count.
    const sorted = events.filter((e) => this.classify(source, e.eventType) === 'sync').sort((a, b) => a.id - b.id);
    let code: string | null = null;
    for (const e of sorted) {
      const value = (e.payload as { disposition?: unknown }).disposition;
      if (typeof value === 'string') code = value;
    }
    const label = code === null ? null : this.labels.get(code);
    if (code !== null && label === undefined) {
      throw new MappingError(`disposition: no label for code "${code}" in the value table`, { source, field: 'disposition' });
    }
    return {
      ...emptyActivity(source, callKey),
      direction: 'inbound',
      dispositionCode: code,
      dispositionLabel: label ?? null,
      notes: sorted.map((e) => e.eventType).join(','),
      final: sorted.some((e) => e.eventType === 'call-ended'),
      eventIds: sorted.map((e) => e.id),
    };
  }

  async toCrm(activity: CallActivity): Promise<CrmRecord[]> {
    return [
      {
        kind: 'activity',
        object: 'Task',
        externalId: activity.externalId,
        fields: { Subject: `Call: ${activity.dispositionLabel ?? 'no disposition'}`, CallDisposition: activity.dispositionLabel, Description: activity.notes },
        createOnly: [],
        lookups: {},
      },
    ];
  }
}

let seq = 0;

/** A webhook as intake would store it (payload and raw body alike). */
export function newEvent(callKey: string, eventType: string, payload: Record<string, unknown> = {}, source: SourceName = 'hcc'): NewEvent {
  seq += 1;
  const body = { callKey, eventType, seq, ...payload };
  return {
    source,
    eventType,
    dedupeKey: `${eventType}:${callKey}:${seq}`,
    callKey,
    vendorTime: null,
    vendorTimeRaw: null,
    receivedAt: new Date(),
    rawBody: JSON.stringify(body),
    payload: body,
    headers: { 'content-type': 'application/json' },
    status: 'pending',
  };
}

/** Fast worker settings: no batching pause, quick polls, retries far in the future unless a test moves them. */
export function fastWorkerConfig(overrides: Partial<WorkerConfig> = {}): WorkerConfig {
  const c = testConfig();
  return {
    SYNC_MAX_ATTEMPTS: 3,
    SYNC_BACKOFF_BASE_MS: 60_000,
    SYNC_BACKOFF_MAX_MS: 3_600_000,
    SYNC_LEASE_SECONDS: c.SYNC_LEASE_SECONDS,
    SYNC_POLL_MS: 200,
    SYNC_BATCH_WAIT_MS: 0,
    WORKER_CONCURRENCY: 1,
    WORKER_SHUTDOWN_MS: 2_000,
    ...overrides,
  };
}

export interface SeedCall {
  source?: SourceName;
  callKey: string;
  status: SyncStatus;
  attempts?: number;
  lastError?: string | null;
  lockedBy?: string | null;
  /** Seconds from now; negative for an expired lease. */
  leaseSeconds?: number;
  /** Seconds from now. */
  updatedAtOffset?: number;
  /** An exact updated_at (to make ties). */
  updatedAt?: string;
  activity?: unknown;
  /** Statuses of the call's events, oldest first. */
  events?: Array<'pending' | 'synced' | 'failed' | 'ignored' | 'discarded'>;
  /** Merged into every event's payload. */
  payload?: Record<string, unknown>;
}

/** Writes a call and its events straight into the tables, in any state a test needs. */
export async function seedCall(db: Queryable, seed: SeedCall): Promise<number> {
  const source = seed.source ?? 'hcc';
  const rows = await db.query<{ id: number }>(
    `INSERT INTO call_syncs (source, call_key, status, version, attempts, last_error, last_error_kind, locked_by, locked_until, updated_at, activity, next_attempt_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
             CASE WHEN $9::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => $9::float8) END,
             COALESCE($10::timestamptz, now() + make_interval(secs => COALESCE($11::float8, 0))),
             $12::jsonb,
             now() + interval '1 hour')
     RETURNING id`,
    [
      source,
      seed.callKey,
      seed.status,
      seed.events?.length ?? 1,
      seed.attempts ?? 0,
      seed.lastError ?? null,
      seed.lastError ? 'mapping' : null,
      seed.lockedBy ?? (seed.leaseSeconds === undefined ? null : 'worker-a'),
      seed.leaseSeconds ?? null,
      seed.updatedAt ?? null,
      seed.updatedAtOffset ?? null,
      seed.activity === undefined ? null : JSON.stringify(seed.activity),
    ],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('seedCall: no row');
  let n = 0;
  for (const status of seed.events ?? [seed.status === 'discarded' ? 'discarded' : seed.status]) {
    n += 1;
    const body = JSON.stringify({ callKey: seed.callKey, n, ...seed.payload });
    await db.query(
      `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, raw_body, payload, headers, status, last_error)
       VALUES ($1, 'call-ended', $2, $3, $4, $5::jsonb, '{}'::jsonb, $6, $7)`,
      [source, `${seed.callKey}:${n}`, seed.callKey, body, body, status, status === 'failed' ? (seed.lastError ?? 'boom') : null],
    );
  }
  return id;
}

/** Adds one event to a call's history, of any type and status (a seedCall call's events are all call-ended). */
export async function addEvent(
  db: Queryable,
  event: { source?: SourceName; callKey: string; eventType: string; status: 'pending' | 'synced' | 'failed' | 'ignored' | 'discarded'; payload?: Record<string, unknown> },
): Promise<number> {
  seq += 1;
  const body = JSON.stringify({ callKey: event.callKey, eventType: event.eventType, seq, ...event.payload });
  const rows = await db.query<{ id: number }>(
    `INSERT INTO webhook_events (source, event_type, dedupe_key, call_key, raw_body, payload, headers, status)
     VALUES ($1, $2, $3, $4, $5::text, $5::text::jsonb, '{}'::jsonb, $6) RETURNING id`,
    [event.source ?? 'hcc', event.eventType, `${event.eventType}:${event.callKey}:${seq}`, event.callKey, body, event.status],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('addEvent: no row');
  return id;
}

export async function callRow(db: Queryable, id: number) {
  const rows = await db.query<{
    status: SyncStatus;
    version: number;
    attempts: number;
    next_attempt_at: Date;
    locked_by: string | null;
    locked_until: Date | null;
    last_error: string | null;
    activity: unknown;
    updated_at: Date;
  }>(`SELECT status, version, attempts, next_attempt_at, locked_by, locked_until, last_error, activity, updated_at FROM call_syncs WHERE id = $1`, [id]);
  return rows[0];
}

export async function eventStatuses(db: Queryable, callKey: string, source: SourceName = 'hcc'): Promise<string[]> {
  const rows = await db.query<{ status: string }>(`SELECT status FROM webhook_events WHERE source = $1 AND call_key = $2 ORDER BY id`, [source, callKey]);
  return rows.map((r) => r.status);
}

export async function auditRows(db: Queryable) {
  return db.query<{ action: string; subject: string | null; ip: string | null; user_agent: string | null; via: string; details: Record<string, unknown> }>(
    `SELECT action, subject, ip, user_agent, via, details FROM admin_audit ORDER BY id`,
  );
}
