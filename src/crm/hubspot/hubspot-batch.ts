import { SyncError } from '../../core/errors';
import type { Clock } from '../../core/time';
import { asJson, isRecord, stringField } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import type { BatchAttempt } from '../engine/isolate';
import type { HsResponse, HubSpotClient } from './hubspot-client';
import { errorDetails, hubspotError, quotesKey, quotesValue } from './hubspot-errors';
import type { HubSpotIdentity } from './hubspot-identity';
import type { Outcome, Prepared } from './hubspot-prepared';

/**
 * One batch request (create, upsert or update) and how its answer is read:
 * per input by objectWriteTraceId, or, for a refusal of the whole batch, for
 * whom it concerns (see engine/isolate.ts).
 */

/**
 * batch/upsert refused because the id property no longer has unique values:
 * the calls are retried this soon, when the property's definition is read
 * again and they are written by searching it.
 */
const IDENTITY_CHANGED_RETRY_MS = 3_000;

export type BatchOperation = 'create' | 'upsert' | 'update';

export class HubSpotBatch {
  constructor(
    private readonly client: HubSpotClient,
    private readonly identity: HubSpotIdentity,
    private readonly clock: Clock,
  ) {}

  /**
   * One batch request, every input traced by objectWriteTraceId. A create
   * with a partial failure answers 207 with per-input errors; upsert and
   * update refuse the whole batch (400, or 404 for ids that do not exist),
   * which is read for whom it concerns (see rejection()).
   */
  async request(operation: BatchOperation, chunk: Prepared[], deadline: Deadline): Promise<BatchAttempt<Prepared, Outcome>> {
    const object = chunk[0]?.record.object ?? '';
    if (chunk.length === 0) return { accepted: true, outcomes: [] };
    const response = await this.client.call('POST', `/crm/v3/objects/${object}/batch/${operation}`, { inputs: chunk.map((p) => p.sent?.payload ?? {}) }, deadline);
    if ((response.status === 200 || response.status === 201 || response.status === 207) && isRecord(response.body)) {
      const isNew = operation === 'create' ? () => true : operation === 'update' ? () => false : (result: Record<string, unknown>) => result['new'] === true;
      return { accepted: true, outcomes: this.outcomes(chunk, response, isNew) };
    }
    return { accepted: false, ...this.rejection(response, chunk) };
  }

  /**
   * Whom a whole-batch refusal concerns. HubSpot names the property
   * (errors[].context.propertyName, or the JSON list in "Property values were
   * not valid: [...]") and, for a bad value, quotes it; missing ids are
   * listed in context.ids. A property HubSpot does not have concerns the
   * inputs that carry it, a bad value those that hold it; an id property
   * that is not unique (any more) concerns every input; a key that exists
   * already (409 CONFLICT on a create) the inputs whose key it quotes.
   * Anything else names nobody and is isolated by bisection.
   */
  private rejection(response: HsResponse, chunk: Prepared[]): { error: SyncError; culprits: ReadonlySet<Prepared> | undefined } {
    const { body, status } = response;
    const error = hubspotError(body, status);
    const message = stringField(body, 'message') ?? '';
    if (/non-unique|not a unique identifier property/i.test(message)) {
      // The portal changed under us: the property is read again on the
      // retry, which then searches it instead (transient: a mapping error
      // would never be retried, and every call of the batch would fail).
      for (const object of new Set(chunk.map((p) => p.record.object))) this.identity.forget(object);
      return {
        error: error.recast(
          'transient',
          `${error.message} (HUBSPOT_ID_PROPERTY no longer requires unique values; the property is read again and the call written by searching it on the next attempt)`,
          new Date(this.clock.now() + IDENTITY_CHANGED_RETRY_MS),
        ),
        culprits: new Set(chunk),
      };
    }
    if (/already exists/i.test(message) || error.crmCode === 'CONFLICT') {
      // A second create of a key: it concerns the inputs whose key HubSpot quotes.
      const culprits = chunk.filter((p) => quotesKey(message, p.record.externalId));
      if (culprits.length > 0) return { error, culprits: new Set(culprits) };
    }
    const context = isRecord(body) ? body['context'] : undefined;
    const missingIds = isRecord(context) && Array.isArray(context['ids']) ? context['ids'].map(String) : [];
    if (missingIds.length > 0) {
      const ids = new Set(missingIds);
      const culprits = chunk.filter((p) => {
        const id = stringField(p.sent?.payload, 'id');
        return id !== undefined && ids.has(id);
      });
      if (culprits.length > 0) return { error, culprits: new Set(culprits) };
    }
    if (status === 404) return { error, culprits: new Set(chunk) };
    const culprits = new Set<Prepared>();
    for (const detail of errorDetails(body)) {
      const name = detail.propertyName;
      if (name === undefined) continue;
      for (const p of chunk) {
        const properties = p.sent?.payload['properties'];
        const value = isRecord(properties) ? properties[name] : undefined;
        if (typeof value !== 'string') continue;
        if (detail.code === 'PROPERTY_DOESNT_EXIST' || quotesValue(detail.message ?? message, value)) culprits.add(p);
      }
    }
    return { error, culprits: culprits.size > 0 ? culprits : undefined };
  }

  private outcomes(chunk: Prepared[], response: HsResponse, isNew: (result: Record<string, unknown>) => boolean): Outcome[] {
    const body = response.body as Record<string, unknown>;
    const results = Array.isArray(body['results']) ? body['results'].filter(isRecord) : [];
    const errors = Array.isArray(body['errors']) ? body['errors'].filter(isRecord) : [];
    const idProperty = this.identity.idProperty;
    const byTrace = new Map<string, Record<string, unknown>>();
    for (const result of results) {
      const trace = stringField(result, 'objectWriteTraceId');
      const properties = result['properties'];
      const key = trace ?? (idProperty === '' ? undefined : stringField(properties, idProperty));
      if (key !== undefined) byTrace.set(key, result);
    }
    const errorsByTrace = new Map<string, Record<string, unknown>>();
    for (const error of errors) {
      const context = error['context'];
      const traces = isRecord(context) && Array.isArray(context['objectWriteTraceId']) ? context['objectWriteTraceId'] : [];
      for (const trace of traces) if (typeof trace === 'string') errorsByTrace.set(trace, error);
    }
    return chunk.map((p): Outcome => {
      const trace = p.record.externalId;
      const result = byTrace.get(trace) ?? (chunk.length === 1 && results.length === 1 ? results[0] : undefined);
      const id = result === undefined ? undefined : stringField(result, 'id');
      if (result !== undefined && id !== undefined) {
        return { ok: true, id, created: isNew(result), result: asJson(result) ?? null, associated: [] };
      }
      const error = errorsByTrace.get(trace) ?? (chunk.length === 1 ? errors[0] : undefined);
      if (error !== undefined) return { ok: false, error: hubspotError(error, response.status), result: asJson(error) ?? null };
      return { ok: false, error: new SyncError('transient', 'HubSpot answered without a result for this record', { httpStatus: response.status }) };
    });
  }
}
