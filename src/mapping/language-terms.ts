import type { JsonValue } from '../core/json';

/**
 * The words of the mapping language: the canonical fields a file can set and
 * the kind each is normalised to, merges, sort keys, event metadata and
 * template filters. The schemas, the compiler and the fold all read these.
 */

export type Scalar = string | number | boolean | null;
/** A value as YAML parses it: plain JSON. */
export type JsonInput = JsonValue;

export const MERGES = ['last', 'first', 'min', 'max', 'lastEvent'] as const;
/**
 * Fold order keys: the vendor's time, the rank of the event type in
 * fold.order, and when the service received the event (stored with it, so
 * the same set of events still gives the same order).
 */
export const SORT_KEYS = ['time', 'rank', 'received'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type Merge = (typeof MERGES)[number];
export const DURATION_UNITS = ['s', 'ms'] as const;
export type DurationUnit = (typeof DURATION_UNITS)[number];
export const LOOKUP_KINDS = ['phone', 'email', 'id', 'field'] as const;

/** Canonical activity fields a source file may set, with the kind each is normalised to. */
export const ACTIVITY_FIELD_KINDS = {
  direction: 'direction',
  customerNumber: 'text',
  companyNumber: 'text',
  agentId: 'text',
  agentEmail: 'text',
  agentName: 'text',
  queue: 'text',
  campaign: 'text',
  startedAt: 'time',
  answeredAt: 'time',
  endedAt: 'time',
  durationSeconds: 'seconds',
  talkSeconds: 'seconds',
  holdSeconds: 'seconds',
  wrapSeconds: 'seconds',
  waitSeconds: 'seconds',
  dispositionCode: 'text',
  dispositionLabel: 'text',
  outcome: 'text',
  recordingUrl: 'text',
  notes: 'text',
} as const;
export type ActivityFieldName = keyof typeof ACTIVITY_FIELD_KINDS;
export const ACTIVITY_FIELDS = Object.keys(ACTIVITY_FIELD_KINDS) as ActivityFieldName[];

export const CALLBACK_FIELD_KINDS = { dueAt: 'time', number: 'text', notes: 'text', agentEmail: 'text', status: 'callbackStatus' } as const;
export type CallbackFieldName = keyof typeof CALLBACK_FIELD_KINDS;
export const CALLBACK_FIELDS = Object.keys(CALLBACK_FIELD_KINDS) as CallbackFieldName[];

export type FieldKind = 'direction' | 'text' | 'time' | 'seconds' | 'json' | 'callbackStatus';

/** Everything a path in the activity scope (derive, CRM files) may start with. */
export const ACTIVITY_READABLE = [
  'source',
  'callKey',
  'externalId',
  ...ACTIVITY_FIELDS,
  'firstEventAt',
  'final',
  'callback',
  'custom',
  'eventIds',
] as const;

/** Event metadata a path in the event scope may read with `@name`. */
export const EVENT_META = ['eventType', 'callKey', 'dedupeKey', 'source', 'vendorTime', 'receivedAt', 'headers'] as const;

export const TEMPLATE_FILTERS = ['upper', 'lower', 'capitalize', 'or', 'prefix', 'suffix'] as const;
