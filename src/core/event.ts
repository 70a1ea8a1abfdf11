/**
 * The stored webhook event: what intake writes to the outbox and what the
 * fold reads back. Every stage speaks of sources by these names.
 */

export const SOURCE_NAMES = ['genesys-ocs', 'enreach', 'ucontact', 'hcc', 'webex-cc'] as const;
export type SourceName = (typeof SOURCE_NAMES)[number];

export function isSourceName(value: string): value is SourceName {
  return (SOURCE_NAMES as readonly string[]).includes(value);
}

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

/**
 * What intake does with an event type, as the source's mapping declares it:
 * `sync` stores it and syncs it to the CRM, `ignore` stores it (status
 * 'ignored') but never syncs it, `drop` answers 200 and counts it without
 * storing it.
 */
export const EVENT_DISPOSITIONS = ['sync', 'ignore', 'drop'] as const;
export type EventDisposition = (typeof EVENT_DISPOSITIONS)[number];
