import type { CrmFieldValue, CrmKind, CrmRecord, LookupRequest } from '../../core/crm-record';
import type { JsonValue } from '../../core/json';

/**
 * The shape of `WriteResult.sent`: for each record of the call, the exact
 * element that went into the CRM request (after lookups), so the admin page
 * and dry-run show what the CRM received, not what we meant to send.
 */
export interface SentRecord {
  kind: CrmRecord['kind'];
  object: string;
  externalId: string;
  operation: 'upsert' | 'create' | 'update';
  /** Method and path of the request that carried it. */
  request: string;
  /** The element of that request's body for this record, verbatim. */
  payload: { [key: string]: JsonValue };
  /** Associations created for it (HubSpot). */
  associations?: Array<{ toObject: string; toId: string }>;
  /** Lookups that found nothing (or more than one match): the field was left unset. */
  unresolved?: string[];
  /** Dry-run only: the lookups a live target would resolve before sending. */
  lookups?: Record<string, LookupRequest>;
}

export interface SentPayload {
  crm: CrmKind;
  records: SentRecord[];
}

export interface DryRunSentPayload {
  crm: 'dry-run';
  salesforce: SentRecord[];
  hubspot: SentRecord[];
}

export function toJson(value: SentPayload | DryRunSentPayload): JsonValue {
  return value as unknown as JsonValue;
}

export function copyFields(
  fields: Record<string, CrmFieldValue>,
  omit: ReadonlySet<string>,
): Record<string, CrmFieldValue> {
  const out: Record<string, CrmFieldValue> = {};
  for (const [name, value] of Object.entries(fields)) {
    if (!omit.has(name)) out[name] = value;
  }
  return out;
}
