import type { SourceName } from '../sources/types';
import type { CallbackStatus } from './schema';

/**
 * The contract between intake, the mapping layer, the worker and the CRM
 * targets. The mapping layer (src/mapping/) implements `MappingSet`.
 */

/** One stored webhook event, as the fold reads it from the outbox. */
export interface StoredEvent {
  id: number;
  source: SourceName;
  eventType: string;
  dedupeKey: string;
  callKey: string;
  vendorTime: Date | null;
  vendorTimeRaw: string | null;
  receivedAt: Date;
  payload: Record<string, unknown>;
  headers: Record<string, string>;
}

/** What intake does with an event type, as the source's mapping declares it. */
export type EventDisposition =
  /** stored and synced to the CRM */
  | 'sync'
  /** stored (status 'ignored') but never synced */
  | 'ignore'
  /** answered 200 and counted, not stored */
  | 'drop';

export type CallDirection = 'inbound' | 'outbound';

/**
 * The canonical call activity: every vendor file maps into it, every CRM maps
 * out of it. Times are ISO-8601 UTC strings so the activity is plain JSON
 * (stored in call_syncs.activity, shown by preview and the admin).
 */
export interface CallActivity {
  source: SourceName;
  callKey: string;
  /** `<source>:<callKey>`: the CRM external id. */
  externalId: string;
  direction: CallDirection | null;
  /** E.164 when it could be parsed, else the raw value. */
  customerNumber: string | null;
  /** Our side's number (the queue/DID/caller id). */
  companyNumber: string | null;
  agentId: string | null;
  agentEmail: string | null;
  agentName: string | null;
  queue: string | null;
  campaign: string | null;
  startedAt: string | null;
  answeredAt: string | null;
  endedAt: string | null;
  /**
   * When the call's earliest folded event happened: its vendor time, else
   * when it was received. Set by the fold, never empty once an event is
   * folded, so a CRM field that must have a time (HubSpot hs_timestamp) can
   * fall back to it when the vendor has not sent the call's own times yet.
   */
  firstEventAt: string | null;
  durationSeconds: number | null;
  talkSeconds: number | null;
  holdSeconds: number | null;
  wrapSeconds: number | null;
  /** How long the customer waited (queued, parked for a callback) before an agent answered, or until they gave up. */
  waitSeconds: number | null;
  dispositionCode: string | null;
  /** Label from the value table; the raw code when the table has none. */
  dispositionLabel: string | null;
  /** A normalised outcome: connected, busy, no_answer, voicemail, left_live_message, wrong_number, abandoned, failed, ... */
  outcome: string | null;
  recordingUrl: string | null;
  notes: string | null;
  /** True once the lifecycle rules say the call is over. */
  final: boolean;
  /** A follow-up (callback) to create as a separate CRM task. */
  callback: CallbackRequest | null;
  /** Extra named values a mapping file defines for its CRM fields. */
  custom: Record<string, JsonValue>;
  /** The event ids folded into this activity, in fold order. */
  eventIds: number[];
}

/** An activity with nothing known yet: the fold's starting point. */
export function emptyActivity(source: SourceName, callKey: string): CallActivity {
  return {
    source,
    callKey,
    externalId: `${source}:${callKey}`,
    direction: null,
    customerNumber: null,
    companyNumber: null,
    agentId: null,
    agentEmail: null,
    agentName: null,
    queue: null,
    campaign: null,
    startedAt: null,
    answeredAt: null,
    endedAt: null,
    firstEventAt: null,
    durationSeconds: null,
    talkSeconds: null,
    holdSeconds: null,
    wrapSeconds: null,
    waitSeconds: null,
    dispositionCode: null,
    dispositionLabel: null,
    outcome: null,
    recordingUrl: null,
    notes: null,
    final: false,
    callback: null,
    custom: {},
    eventIds: [],
  };
}

export interface CallbackRequest {
  dueAt: string;
  number: string | null;
  notes: string | null;
  /** Who the follow-up is for, when the vendor says. */
  agentEmail: string | null;
  /**
   * open (the default), done or cancelled, as the source file declares it. A
   * callback that is done or withdrawn keeps its other fields, so its CRM
   * task is closed in place (same external id) rather than left open.
   */
  status: CallbackStatus;
}

export type { CallbackStatus } from './schema';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type CrmKind = 'salesforce' | 'hubspot';

/** How a target resolves a reference field (WhoId, OwnerId, a contact association...). */
export type LookupRequest =
  /** Contact before Lead (Salesforce) / contact (HubSpot) whose phone fields match this E.164 number. */
  | { by: 'phone'; value: string }
  /** User (Salesforce) / owner (HubSpot) with this email. */
  | { by: 'email'; value: string }
  /** A record of `object` whose `field` equals value (e.g. Account by AccountNumber). */
  | { by: 'field'; object: string; field: string; value: string }
  /** Already an id: written as is. */
  | { by: 'id'; value: string };

export type CrmFieldValue = string | number | boolean | null;

/** One record to upsert: the call activity itself, or its follow-up task. */
export interface CrmRecord {
  kind: 'activity' | 'followup';
  /** Salesforce Task / HubSpot calls or tasks. */
  object: string;
  /** Unique per record: `<source>:<callKey>` or `<source>:<callKey>:callback`. */
  externalId: string;
  /** Exactly the fields to write, lookups not yet resolved. */
  fields: Record<string, CrmFieldValue>;
  /** Fields that may be sent on create only (Salesforce TaskSubtype). */
  createOnly: string[];
  /** Reference fields to resolve before writing, by field name (WhoId, WhatId, OwnerId, hubspot_owner_id, contact association...). */
  lookups: Record<string, LookupRequest>;
}

export class MappingError extends Error {
  constructor(
    message: string,
    readonly details: { source?: string; file?: string; line?: number; field?: string } = {},
  ) {
    super(message);
    this.name = 'MappingError';
  }
}

/** The loaded, validated mapping files. Immutable: a reload builds a new one. */
export interface MappingSet {
  /** What intake does with this event type. */
  classify(source: SourceName, eventType: string): EventDisposition;
  /**
   * Folds all events of one call into one activity; order-independent and
   * idempotent. Async because the JSONata escape hatch evaluates
   * asynchronously. Rejects with MappingError.
   */
  fold(source: SourceName, callKey: string, events: StoredEvent[]): Promise<CallActivity>;
  /** The records to write for an activity, in the shape of one CRM. Rejects with MappingError. */
  toCrm(activity: CallActivity, crm: CrmKind): Promise<CrmRecord[]>;
}
