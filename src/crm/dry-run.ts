import type { Config } from '../config';
import type { Logger } from '../log';
import type { CrmRecord, JsonValue } from '../mapping/types';
import { buildHubSpotUpsertInput, propertyValue } from './hubspot';
import { buildSalesforceRecord, salesforceRecordProblem } from './salesforce';
import { toJson, type DryRunSentPayload, type SentRecord } from './sent';
import { SyncError, type CrmTarget, type WriteItem, type WriteResult } from './types';

/**
 * The default target when no CRM is configured: no network at all. For every
 * call it builds exactly the request elements the Salesforce and HubSpot
 * targets would send (lookups shown as pending: resolving them needs the
 * CRM) and returns them as `sent`, which the worker stores, so RevOps can
 * trial mappings on live traffic through the admin API and preview.
 */

const RECENT_LIMIT = 500;

export interface DryRunWrite {
  at: string;
  syncId: number;
  externalId: string;
  sent: JsonValue;
}

export class DryRunTarget implements CrmTarget {
  readonly name = 'dry-run' as const;
  readonly needs = ['salesforce', 'hubspot'] as const;
  readonly maxBatch = 200;
  private readonly recent: DryRunWrite[] = [];

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
  ) {}

  pausedUntil(): Date | undefined {
    return undefined;
  }

  /** The last writes, newest last (bounded), for debugging without a database. */
  recentWrites(): readonly DryRunWrite[] {
    return this.recent;
  }

  async write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    if (signal?.aborted) throw new SyncError('transient', 'dry-run write aborted by the caller', { crmCode: 'ABORTED' });
    const results = items.map((item) => this.writeOne(item));
    this.logger.debug({ calls: items.length }, 'dry-run: recorded what would be sent');
    return Promise.resolve(results);
  }

  private writeOne(item: WriteItem): WriteResult {
    const salesforce = item.records.salesforce ?? [];
    const hubspot = item.records.hubspot ?? [];
    const problem = salesforce.map(salesforceRecordProblem).find((p) => p !== undefined) ?? hubspot.map(hubspotProblem).find((p) => p !== undefined);
    const payload: DryRunSentPayload = {
      crm: 'dry-run',
      salesforce: salesforce.map((record) => this.salesforceRecord(record, item.knownIds[record.externalId] !== undefined)),
      hubspot: hubspot.map((record) => this.hubspotRecord(record, item.knownIds[record.externalId])),
    };
    const sent = toJson(payload);
    this.recent.push({ at: new Date().toISOString(), syncId: item.syncId, externalId: item.externalId, sent });
    if (this.recent.length > RECENT_LIMIT) this.recent.splice(0, this.recent.length - RECENT_LIMIT);
    if (problem !== undefined) return { ok: false, error: new SyncError('mapping', problem), sent };

    const ids: Record<string, string> = {};
    for (const record of [...salesforce, ...hubspot]) ids[record.externalId] = item.knownIds[record.externalId] ?? `dry-run:${record.externalId}`;
    const activity = [...salesforce, ...hubspot].find((r) => r.kind === 'activity');
    const created = activity !== undefined && item.knownIds[activity.externalId] === undefined;
    return { ok: true, ids, created, sent };
  }

  private salesforceRecord(record: CrmRecord, known: boolean): SentRecord {
    const field = this.config.SALESFORCE_EXTERNAL_ID_FIELD;
    return {
      kind: record.kind,
      object: record.object,
      externalId: record.externalId,
      operation: 'upsert',
      request: `PATCH /services/data/v${this.config.SALESFORCE_API_VERSION}/composite/sobjects/${record.object}/${field}`,
      payload: buildSalesforceRecord(record, field, {}, known) as { [key: string]: JsonValue },
      ...(Object.keys(record.lookups).length > 0 ? { lookups: record.lookups } : {}),
    };
  }

  /** As the HubSpot target would send it in its configured mode (upsert, or update/create). */
  private hubspotRecord(record: CrmRecord, knownId: string | undefined): SentRecord {
    const idProperty = this.config.HUBSPOT_ID_PROPERTY.trim();
    const upsert = idProperty !== '' && this.config.HUBSPOT_ID_PROPERTY_UNIQUE;
    const lookups = Object.keys(record.lookups).length > 0 ? { lookups: record.lookups } : {};
    const base = { kind: record.kind, object: record.object, externalId: record.externalId };
    if (upsert) {
      return {
        ...base,
        operation: 'upsert',
        request: `POST /crm/v3/objects/${record.object}/batch/upsert`,
        payload: buildHubSpotUpsertInput(record, idProperty, knownId !== undefined),
        ...lookups,
      };
    }
    const omit = new Set(knownId === undefined ? [] : record.createOnly);
    const properties: Record<string, string> = {};
    for (const [name, value] of Object.entries(record.fields)) if (!omit.has(name)) properties[name] = propertyValue(value);
    if (knownId !== undefined) {
      return {
        ...base,
        operation: 'update',
        request: `POST /crm/v3/objects/${record.object}/batch/update`,
        payload: { id: knownId, objectWriteTraceId: record.externalId, properties },
        ...lookups,
      };
    }
    const identity = idProperty !== '' ? idProperty : record.object === 'calls' ? 'hs_call_external_id' : undefined;
    return {
      ...base,
      operation: 'create',
      request: `POST /crm/v3/objects/${record.object}/batch/create`,
      payload: { objectWriteTraceId: record.externalId, properties: identity === undefined ? properties : { ...properties, [identity]: record.externalId } },
      ...lookups,
    };
  }
}

function hubspotProblem(record: CrmRecord): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(record.object)) return `"${record.object}" is not a HubSpot object type`;
  return record.externalId === '' ? 'the record has no external id' : undefined;
}
