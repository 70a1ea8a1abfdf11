import { sql } from 'drizzle-orm';
import {
  bigserial,
  bigint,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

const tz = { withTimezone: true, mode: 'date' } as const;

export const EVENT_STATUSES = ['pending', 'synced', 'failed', 'ignored', 'discarded'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];

/**
 * The outbox: one row per accepted webhook, written before the vendor gets
 * its 200. Unique on (source, dedupe_key) so a re-delivery is a no-op.
 *
 * `call_key` groups the events of one call (interaction). When the vendor
 * gives none (an agent log line, a Reg F decline) it is `event:<dedupe_key>`,
 * so every row belongs to exactly one group and the worker needs no special
 * case.
 *
 * status/attempts/next_attempt_at/last_error mirror the sync of the call the
 * event belongs to (call_syncs), so a single event can be inspected on its own.
 *
 * fillfactor 70 (migration 0003; drizzle cannot declare it) leaves room on
 * each page for those updates to be HOT.
 */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    source: text('source').notNull(),
    eventType: text('event_type').notNull(),
    dedupeKey: text('dedupe_key').notNull(),
    callKey: text('call_key').notNull(),
    /** Parsed vendor time; null when the vendor's value was missing or malformed. */
    vendorTime: timestamp('vendor_time', tz),
    /** The vendor's time value exactly as sent, kept even when it could not be parsed. */
    vendorTimeRaw: text('vendor_time_raw'),
    receivedAt: timestamp('received_at', tz).notNull().defaultNow(),
    /** The request body byte-for-byte (UTF-8), for audit and re-parsing. */
    rawBody: text('raw_body').notNull(),
    payload: jsonb('payload').notNull(),
    /** An allow-listed subset of request headers; never a credential. */
    headers: jsonb('headers').$type<Record<string, string>>().notNull(),
    status: text('status').$type<EventStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', tz),
    lastError: text('last_error'),
  },
  (t) => [
    uniqueIndex('webhook_events_source_dedupe_key').on(t.source, t.dedupeKey),
    index('webhook_events_call').on(t.source, t.callKey, t.id),
    // For retention. Deliberately no index on status: the worker updates it
    // for every event it syncs, and an indexed status would make each of
    // those updates write every index again instead of a HOT update.
    index('webhook_events_received').on(t.receivedAt),
  ],
);

export const SYNC_STATUSES = ['pending', 'synced', 'failed', 'discarded'] as const;
export type SyncStatus = (typeof SYNC_STATUSES)[number];

/**
 * One row per call: the unit the worker claims, folds and writes to the CRM.
 *
 * `version` counts the events folded into the call; the worker remembers the
 * version it claimed, and a completion only marks the call synced when no
 * event arrived meanwhile (otherwise it stays pending and is synced again,
 * folding the late event in).
 *
 * `locked_until`/`locked_by` are a lease, not a row lock: the claim holds a
 * row lock only for its own short statement, and a crashed worker's lease
 * simply expires.
 *
 * fillfactor 70 (migration 0003; drizzle cannot declare it): intake's version
 * bump, the claim and lease renewals touch no indexed column, and with room
 * on the page they are HOT updates that write no index.
 */
export const callSyncs = pgTable(
  'call_syncs',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    source: text('source').notNull(),
    callKey: text('call_key').notNull(),
    status: text('status').$type<SyncStatus>().notNull().default('pending'),
    version: integer('version').notNull().default(0),
    claimedVersion: integer('claimed_version'),
    syncedVersion: integer('synced_version').notNull().default(0),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', tz).notNull().defaultNow(),
    lockedUntil: timestamp('locked_until', tz),
    lockedBy: text('locked_by'),
    target: text('target'),
    crmId: text('crm_id'),
    crmFollowupId: text('crm_followup_id'),
    lastError: text('last_error'),
    lastErrorKind: text('last_error_kind'),
    lastHttpStatus: integer('last_http_status'),
    lastResponse: jsonb('last_response'),
    /** The folded canonical activity of the last attempt. */
    activity: jsonb('activity'),
    /** The exact CRM payload of the last attempt (what dry-run "would send"). */
    crmPayload: jsonb('crm_payload'),
    /** When the call last became pending: the received time of its oldest unsynced event, for the outbox-age metric. */
    pendingSince: timestamp('pending_since', tz).notNull().defaultNow(),
    firstEventAt: timestamp('first_event_at', tz).notNull().defaultNow(),
    lastEventAt: timestamp('last_event_at', tz).notNull().defaultNow(),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', tz).notNull().defaultNow(),
    syncedAt: timestamp('synced_at', tz),
  },
  (t) => [
    uniqueIndex('call_syncs_source_call_key').on(t.source, t.callKey),
    // The claim query: due pending calls in due order.
    index('call_syncs_due').on(t.nextAttemptAt, t.id).where(sql`status = 'pending'`),
    index('call_syncs_status_updated').on(t.status, t.updatedAt, t.id),
  ],
);

/** Every attempt to write a call to the CRM, for the admin's history. */
export const syncAttempts = pgTable(
  'sync_attempts',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    callSyncId: bigint('call_sync_id', { mode: 'number' })
      .notNull()
      .references(() => callSyncs.id, { onDelete: 'cascade' }),
    attempt: integer('attempt').notNull(),
    target: text('target').notNull(),
    workerId: text('worker_id').notNull(),
    startedAt: timestamp('started_at', tz).notNull(),
    finishedAt: timestamp('finished_at', tz).notNull().defaultNow(),
    /** synced | retry | failed | released */
    outcome: text('outcome').notNull(),
    errorKind: text('error_kind'),
    error: text('error'),
    httpStatus: integer('http_status'),
    crmResponse: jsonb('crm_response'),
  },
  (t) => [index('sync_attempts_call').on(t.callSyncId, t.id)],
);

/** Who did what in the admin, from where. */
export const adminAudit = pgTable(
  'admin_audit',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    at: timestamp('at', tz).notNull().defaultNow(),
    action: text('action').notNull(),
    subject: text('subject'),
    ip: text('ip'),
    userAgent: text('user_agent'),
    via: text('via').notNull(),
    details: jsonb('details'),
  },
  (t) => [index('admin_audit_at').on(t.at)],
);

/**
 * Admin page sessions. The cookie is signed (src/admin/auth.ts); this row is
 * what makes it live: logout deletes it, so a copied cookie is dead at once.
 * Keyed by a SHA-256 of the session id, so the table holds no usable cookie.
 */
export const adminSessions = pgTable(
  'admin_sessions',
  {
    idHash: text('id_hash').primaryKey(),
    createdAt: timestamp('created_at', tz).notNull().defaultNow(),
    expiresAt: timestamp('expires_at', tz).notNull(),
  },
  (t) => [index('admin_sessions_expires').on(t.expiresAt)],
);
