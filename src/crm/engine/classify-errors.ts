import type { JsonValue } from '../../core/json';
import { SyncError, type SyncErrorKind } from '../../core/errors';

/**
 * Helpers shared by the targets to turn what a CRM answered into a
 * SyncError. The CRM-specific rules (which Salesforce errorCode is a quota,
 * which HubSpot policyName is daily) live in each target; here is what is
 * common: Retry-After, network failures, HTTP status defaults, and how to
 * pick the error that speaks for a call with several records.
 */

/** Retry-After in seconds or as an HTTP date; answers epoch milliseconds. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return now + Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(now, date);
}

/**
 * Anything thrown while talking to a CRM that is not already a SyncError:
 * connection refused/reset, DNS, a body that is not JSON... all transient,
 * the worker retries them with backoff.
 */
export function transportError(err: unknown, crm: string): SyncError {
  if (err instanceof SyncError) return err;
  const code =
    typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  const message = withoutQueries(err instanceof Error ? err.message : String(err));
  // No `cause`: node-fetch's error carries the full URL, whose query holds
  // phone numbers (SOSL) and emails; the message above is cleaned of it.
  return new SyncError('transient', `${crm} request failed: ${message}`, { crmCode: code ?? 'NETWORK' });
}

/** URLs in a message lose their query string (lookups put phone numbers and emails there). */
export function withoutQueries(message: string): string {
  return message.replace(/(https?:\/\/[^\s?#]+)[?#][^\s]*/g, '$1?…');
}

const SEVERITY: Record<SyncErrorKind, number> = { permanent: 5, mapping: 4, auth: 3, quota: 2, transient: 1 };

/**
 * The error that speaks for a call whose records failed in different ways: a
 * permanent rejection wins (retrying cannot fix it), then the others.
 */
export function worstError(errors: SyncError[]): SyncError | undefined {
  let worst: SyncError | undefined;
  for (const err of errors) {
    if (worst === undefined || SEVERITY[err.kind] > SEVERITY[worst.kind]) worst = err;
  }
  return worst;
}

export function asJson(value: unknown): JsonValue | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(JSON.stringify(value)) as JsonValue;
  } catch {
    return String(value);
  }
}

export function parseJsonBody(text: string): unknown {
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function stringField(value: unknown, key: string): string | undefined {
  if (!isRecord(value)) return undefined;
  const field = value[key];
  return typeof field === 'string' ? field : undefined;
}

/** Records of a batch by the index of the call (WriteItem) they belong to. */
export function groupByItem<T extends { itemIndex: number }>(records: T[]): Map<number, T[]> {
  const byItem = new Map<number, T[]>();
  for (const record of records) {
    const list = byItem.get(record.itemIndex) ?? [];
    list.push(record);
    byItem.set(record.itemIndex, list);
  }
  return byItem;
}
