import type { Config } from '../../config';
import type { Logger } from '../../log';
import type { CrmRecord, LookupRequest } from '../../core/crm-record';
import type { JsonValue } from '../../core/json';
import {
  hubspotCreateSent,
  hubspotIdLookups,
  hubspotIdentityProperty,
  hubspotProperties,
  hubspotRecordProblem,
  hubspotUpdateSent,
  hubspotUpsertSent,
} from '../hubspot/hubspot-payload';
import {
  SALESFORCE_API_VERSION_DEFAULT,
  buildSalesforceRecord,
  idLookups,
  salesforceRecordProblem,
  salesforceSentRecord,
} from '../salesforce/salesforce-payload';
import { toJson, type DryRunSentPayload, type SentRecord } from '../engine/sent-record';
import { type CrmTarget, type WriteItem, type WriteResult } from '../engine/target-contract';
import { SyncError } from '../../core/errors';
import { CRM_TARGET_NEEDS } from '../../core/crm-targets';

/**
 * The default target when no CRM is configured: no network at all. For every
 * call it builds exactly the request elements the Salesforce and HubSpot
 * targets would send, through the same builders (lookups the mapping already
 * resolved are filled in; the others are shown as pending, since resolving
 * them needs the CRM), and returns them as `sent`, which the worker stores,
 * so RevOps can trial mappings on live traffic through the admin API and
 * preview.
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
  readonly needs = CRM_TARGET_NEEDS['dry-run'];
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
    const problem = salesforce.map(salesforceRecordProblem).find((p) => p !== undefined) ?? hubspot.map(hubspotRecordProblem).find((p) => p !== undefined);
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
    const version = this.config.SALESFORCE_API_VERSION || SALESFORCE_API_VERSION_DEFAULT;
    const payload = buildSalesforceRecord(record, field, idLookups(record), known);
    return { ...salesforceSentRecord(record, version, field, payload), ...pendingLookups(record) };
  }

  /**
   * As the HubSpot target sends it. With a unique id property (what the
   * target finds in a portal set up as the README says, and what dry-run
   * assumes unless HUBSPOT_ID_PROPERTY_UNIQUE=false): a new call is created
   * with the property and its associations inline, a known one upserted.
   * Without: a known call is updated by id, a new one created (after a
   * search that found nothing).
   */
  private hubspotRecord(record: CrmRecord, knownId: string | undefined): SentRecord {
    const idProperty = this.config.HUBSPOT_ID_PROPERTY.trim();
    const upsertMode = idProperty !== '' && this.config.HUBSPOT_ID_PROPERTY_UNIQUE;
    const resolved = hubspotIdLookups(record);
    const properties = hubspotProperties(record, knownId !== undefined, resolved.properties);
    let sent: SentRecord;
    if (knownId === undefined) sent = hubspotCreateSent(record, properties, hubspotIdentityProperty(idProperty, record.object), resolved.associations);
    else if (upsertMode) sent = hubspotUpsertSent(record, properties, idProperty);
    else sent = hubspotUpdateSent(record, properties, knownId);
    // Listed as the target lists what it associated: inline in the create,
    // or through the v4 association endpoint afterwards.
    const { associations } = resolved;
    return { ...sent, ...(associations.length > 0 ? { associations } : {}), ...pendingLookups(record) };
  }
}

/** The lookups a live target would still have to resolve with the CRM. */
function pendingLookups(record: CrmRecord): { lookups?: Record<string, LookupRequest> } {
  const pending = Object.entries(record.lookups).filter(([, lookup]) => lookup.by !== 'id');
  return pending.length > 0 ? { lookups: Object.fromEntries(pending) } : {};
}
