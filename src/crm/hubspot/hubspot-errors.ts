import { SyncError } from '../../core/errors';
import { asJson, isRecord, parseJsonBody, stringField } from '../engine/classify-errors';

/**
 * How a HubSpot refusal is read: its details (errors[], or the JSON list
 * embedded in "Property values were not valid: [...]"), its kind, and
 * whether a message quotes a value or a call key.
 */

/** Error categories worth retrying when HubSpot reports them for one input. */
const TRANSIENT_CATEGORIES = new Set(['CONFLICT', 'RATE_LIMITS', 'RATE_LIMIT', 'LOCKED', 'INTERNAL_ERROR']);

/** One entry of a HubSpot error's details. */
export interface ErrorDetail {
  code: string | undefined;
  propertyName: string | undefined;
  message: string | undefined;
}

/** A rejection (a whole 4xx answer, or one input's entry in `errors`) as a SyncError. */
export function hubspotError(body: unknown, status: number): SyncError {
  const category = stringField(body, 'category') ?? `HTTP_${status}`;
  const details = isRecord(body) && Array.isArray(body['errors']) ? body['errors'] : [];
  const detail = stringField(details[0], 'message');
  const message = detail ?? stringField(body, 'message') ?? 'request rejected';
  // A property the portal does not have is the mapping's to fix, not the record's.
  const kind = TRANSIENT_CATEGORIES.has(category)
    ? 'transient'
    : errorDetails(body).some((d) => d.code === 'PROPERTY_DOESNT_EXIST')
      ? 'mapping'
      : 'permanent';
  return new SyncError(kind, `${category}: ${message}`, { httpStatus: status, crmCode: category, crmResponse: asJson(body) });
}

/**
 * The details of a HubSpot error body: each `errors[]` entry (code,
 * context.propertyName, message), and the validation results HubSpot embeds
 * as JSON in "Property values were not valid: [{...,"error","name"}]".
 */
export function errorDetails(body: unknown): ErrorDetail[] {
  if (!isRecord(body)) return [];
  const details: ErrorDetail[] = [];
  for (const entry of Array.isArray(body['errors']) ? body['errors'] : []) {
    const context = isRecord(entry) ? entry['context'] : undefined;
    const names = isRecord(context) && Array.isArray(context['propertyName']) ? context['propertyName'] : [];
    details.push({
      code: stringField(entry, 'code'),
      propertyName: typeof names[0] === 'string' ? names[0] : undefined,
      message: stringField(entry, 'message'),
    });
  }
  const message = stringField(body, 'message') ?? '';
  const embedded = message.indexOf('[');
  if (embedded >= 0 && /not valid/i.test(message.slice(0, embedded))) {
    const parsed = parseJsonBody(message.slice(embedded));
    for (const entry of Array.isArray(parsed) ? parsed : []) {
      details.push({ code: stringField(entry, 'error'), propertyName: stringField(entry, 'name'), message: stringField(entry, 'message') });
    }
  }
  return details;
}

/**
 * Whether a validation message is about this value: HubSpot starts it with
 * the value ("EXPLODED was not one of the allowed options: …", "123 is not a
 * valid owner id"); the list after the first colon (the allowed options)
 * names values that are fine.
 */
export function quotesValue(message: string, value: string): boolean {
  return mentions(message.split(': ')[0] ?? '', value);
}

/** Whether `text` holds `value` as a whole word (id 1001 is not in 11001). */
export function mentions(text: string, value: string): boolean {
  if (value === '') return false;
  return new RegExp(`(^|[^\\w])${escapeRegExp(value)}([^\\w]|$)`).test(text);
}

/**
 * Whether `text` quotes this call key as a whole value ("call_sync_id=hcc:9
 * already exists" quotes hcc:9, not hcc:9:callback nor hcc:90).
 */
export function quotesKey(text: string, key: string): boolean {
  if (key === '') return false;
  return new RegExp(`(^|[\\s="'\\[(])${escapeRegExp(key)}(?=$|[\\s"'\\]),;]|\\.(?:\\s|$))`).test(text);
}

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
