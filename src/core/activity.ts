import type { SourceName } from './event';
import type { JsonValue } from './json';

/**
 * The canonical call activity: every vendor file maps into it, every CRM
 * record is built out of it.
 */

export const CALLBACK_STATUSES = ['open', 'done', 'cancelled'] as const;
export type CallbackStatus = (typeof CALLBACK_STATUSES)[number];

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
