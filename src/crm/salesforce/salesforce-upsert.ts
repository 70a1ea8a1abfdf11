import type { CrmFieldValue } from '../../core/crm-record';
import { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import { asJson, isRecord, stringField } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import type { BatchAttempt } from '../engine/isolate';
import type { PreparedRecord } from '../engine/write-engine';
import { firstError, TRANSIENT_CODES, type SalesforceClient, type SfResponse } from './salesforce-client';
import { salesforceCollectionPath, salesforceCreateOnly } from './salesforce-payload';

/**
 * One sObject Collections upsert (allOrNone false: each record succeeds or
 * fails alone) and how its answer is read: per record, or, for a rejection
 * of the whole request, for whom it concerns (see engine/isolate.ts).
 */

export const COLLECTION_LIMIT = 200;

/** Per-record status codes worth retrying; everything else a record answers is a rejection. */
const TRANSIENT_RECORD_CODES = new Set([...TRANSIENT_CODES, 'REQUEST_LIMIT_EXCEEDED']);
/**
 * Whole-request rejections that concern every record of the request alike:
 * the object or the External ID field is missing or not visible, the API is
 * off. No record is to blame, so nothing is bisected.
 */
const SHARED_REQUEST_CODES = new Set([
  'NOT_FOUND',
  'INVALID_TYPE',
  'EXCEEDED_ID_LIMIT',
  'API_DISABLED_FOR_ORG',
  'FUNCTIONALITY_NOT_ENABLED',
  'METHOD_NOT_ALLOWED',
]);

/** A record's lookups as resolved for one write. */
export interface ResolvedLookups {
  /** Id by field (WhoId, OwnerId...), for the lookups that found one. */
  values: Record<string, string>;
  /** Fields whose lookup found nothing (left unset). */
  unresolved: string[];
  /** Fields whose id the cache served rather than the org during this write. */
  cached: string[];
}

export interface Prepared extends PreparedRecord {
  omitCreateOnly: boolean;
  payload: Record<string, CrmFieldValue | { type: string }>;
  lookups: ResolvedLookups;
}

export type Outcome =
  | { ok: true; id: string; created: boolean; result: JsonValue }
  | {
      ok: false;
      error: SyncError;
      result?: JsonValue;
      /** The fields the org named in its error (statusCode errors carry `fields`). */
      fields: string[];
    };

export class SalesforceUpsert {
  constructor(
    private readonly client: SalesforceClient,
    private readonly version: string,
    private readonly externalIdField: string,
  ) {}

  collectionPath(object: string): string {
    return salesforceCollectionPath(this.version, object, this.externalIdField);
  }

  /** One request for records of one object: their outcomes in order, or the rejection and whom it concerns. */
  async request(chunk: Prepared[], deadline: Deadline): Promise<BatchAttempt<Prepared, Outcome>> {
    const first = chunk[0];
    if (first === undefined) return { accepted: true, outcomes: [] };
    const response = await this.client.call(
      'PATCH',
      this.collectionPath(first.record.object),
      { allOrNone: false, records: chunk.map((p) => p.payload) },
      deadline,
    );
    if (response.status === 200 && Array.isArray(response.body)) {
      const results: unknown[] = response.body;
      return { accepted: true, outcomes: chunk.map((_, i) => this.recordOutcome(results[i])) };
    }
    return { accepted: false, ...this.rejection(response, chunk) };
  }

  /** A missing object or External ID field concerns every record; "No such column 'X'" the records that carry X. */
  private rejection(response: SfResponse, chunk: Prepared[]): { error: SyncError; culprits: ReadonlySet<Prepared> | undefined } {
    const { code, message } = firstError(response.body);
    const options = { httpStatus: response.status, crmCode: code, crmResponse: asJson(response.body) };
    const text = `${code ?? `HTTP ${response.status}`}: ${message ?? 'request rejected'}`;
    if (response.status === 404 || (code !== undefined && SHARED_REQUEST_CODES.has(code))) {
      const hint =
        response.status === 404
          ? ` (is ${this.externalIdField} an External ID field on ${chunk[0]?.record.object ?? 'the object'}, visible to the integration user? See SALESFORCE_EXTERNAL_ID_FIELD)`
          : '';
      return { error: new SyncError('mapping', `${text}${hint}`, options), culprits: new Set(chunk) };
    }
    const column = code === 'INVALID_FIELD' && message !== undefined ? /No such column '([^']+)'/i.exec(message)?.[1]?.toLowerCase() : undefined;
    if (column !== undefined) {
      const carriers = chunk.filter((p) => Object.keys(p.payload).some((name) => name.toLowerCase() === column));
      if (carriers.length > 0) return { error: new SyncError('mapping', text, options), culprits: new Set(carriers) };
    }
    return { error: new SyncError('permanent', text, options), culprits: undefined };
  }

  private recordOutcome(result: unknown): Outcome {
    if (!isRecord(result)) {
      return { ok: false, error: new SyncError('transient', 'Salesforce answered without a result for this record'), fields: [] };
    }
    const json = asJson(result) ?? null;
    const id = stringField(result, 'id');
    if (result['success'] === true && id !== undefined) {
      return { ok: true, id, created: result['created'] === true, result: json };
    }
    const errors = Array.isArray(result['errors']) ? result['errors'] : [];
    const first: unknown = errors[0];
    const code = stringField(first, 'statusCode') ?? 'UNKNOWN_ERROR';
    const message = stringField(first, 'message') ?? 'record rejected';
    const fields = isRecord(first) && Array.isArray(first['fields']) ? first['fields'].filter((f) => typeof f === 'string') : [];
    // DUPLICATE_VALUE on our external id field is two writers creating the
    // same call at once; the retry finds the record and updates it.
    const raced = code === 'DUPLICATE_VALUE' && message.includes(this.externalIdField);
    const kind = TRANSIENT_RECORD_CODES.has(code) || raced ? 'transient' : 'permanent';
    return {
      ok: false,
      result: json,
      fields,
      error: new SyncError(kind, `${code}: ${message}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`, {
        httpStatus: 200,
        crmCode: code,
        crmResponse: json,
      }),
    };
  }
}

/**
 * Whether the org refused a create-only field of a record we sent as new
 * (INVALID_FIELD_FOR_INSERT_UPDATE on an update). The fields come from the
 * error's own `fields` list (its message only as a fallback); only fields
 * known to be create-only are dropped on the resend: a field the integration
 * user may not edit at all must keep failing with the org's message.
 */
export function refusedCreateOnly(outcome: Outcome, p: Prepared): boolean {
  if (outcome.ok || p.omitCreateOnly || outcome.error.crmCode !== 'INVALID_FIELD_FOR_INSERT_UPDATE') return false;
  const createOnly = salesforceCreateOnly(p.record).filter((field) => field in p.payload);
  const named = outcome.fields.length > 0 ? outcome.fields : createOnly.filter((field) => outcome.error.message.includes(field));
  return named.some((field) => createOnly.includes(field));
}
