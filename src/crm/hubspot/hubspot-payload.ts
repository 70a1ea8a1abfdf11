import type { CrmFieldValue, CrmRecord } from '../../core/crm-record';
import type { SentRecord } from '../engine/sent-record';

/**
 * How a CrmRecord becomes a HubSpot batch input. Shared by the HubSpot
 * target and dry-run so that dry-run shows exactly what the target sends;
 * kept apart from the target's client so that dry-run does not load the HubSpot SDK.
 */

export const HUBSPOT_BATCH_LIMIT = 100;
export const HUBSPOT_OBJECT_NAME = /^[A-Za-z0-9_-]+$/;

/** Lookup keys that are associations rather than properties. */
export const ASSOCIATION_KEYS: Record<string, string> = {
  contact: 'contacts',
  contacts: 'contacts',
  company: 'companies',
  companies: 'companies',
  deal: 'deals',
  deals: 'deals',
  ticket: 'tickets',
  tickets: 'tickets',
};

/** HUBSPOT_DEFINED default association types, for associations sent inline with a create. */
const ASSOCIATION_TYPE_IDS: Record<string, number> = {
  'calls:contacts': 194,
  'tasks:contacts': 204,
  'calls:companies': 182,
  'tasks:companies': 192,
  'calls:deals': 206,
  'tasks:deals': 216,
  'calls:tickets': 220,
  'tasks:tickets': 230,
};

export interface HubSpotAssociation {
  toObject: string;
  toId: string;
}

/** HubSpot property values are strings; null clears the property. */
export function propertyValue(value: CrmFieldValue): string {
  if (value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

/** The record's properties as strings, create-only ones left out for a record that exists, resolved lookups added. */
export function hubspotProperties(record: CrmRecord, omitCreateOnly: boolean, resolved: Record<string, string> = {}): Record<string, string> {
  const omit = new Set(omitCreateOnly ? record.createOnly : []);
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.fields)) if (!omit.has(name)) properties[name] = propertyValue(value);
  return { ...properties, ...resolved };
}

/**
 * Where a record's `<source>:<callKey>` lives: HUBSPOT_ID_PROPERTY, or for
 * calls without one the standard hs_call_external_id. Other objects then
 * have none (they rely on the ids the worker stored).
 */
export function hubspotIdentityProperty(idProperty: string, object: string): string | undefined {
  if (idProperty !== '') return idProperty;
  return object === 'calls' ? 'hs_call_external_id' : undefined;
}

/** The associations HubSpot knows a default type for, which a create can carry inline. */
export function inlineAssociations(object: string, associations: readonly HubSpotAssociation[]): HubSpotAssociation[] {
  return associations.filter((a) => ASSOCIATION_TYPE_IDS[`${object}:${a.toObject}`] !== undefined);
}

function base(record: CrmRecord): Pick<SentRecord, 'kind' | 'object' | 'externalId'> {
  return { kind: record.kind, object: record.object, externalId: record.externalId };
}

/** batch/create: the identity property set to the call key, the associations inline. */
export function hubspotCreateSent(
  record: CrmRecord,
  properties: Record<string, string>,
  identityProperty: string | undefined,
  associations: readonly HubSpotAssociation[],
): SentRecord {
  const inline = inlineAssociations(record.object, associations);
  return {
    ...base(record),
    operation: 'create',
    request: `POST /crm/v3/objects/${record.object}/batch/create`,
    payload: {
      objectWriteTraceId: record.externalId,
      properties: identityProperty === undefined ? properties : { ...properties, [identityProperty]: record.externalId },
      ...(inline.length > 0
        ? {
            associations: inline.map((a) => ({
              to: { id: a.toId },
              types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: ASSOCIATION_TYPE_IDS[`${record.object}:${a.toObject}`] ?? 0 }],
            })),
          }
        : {}),
    },
  };
}

/** batch/upsert by the unique id property. */
export function hubspotUpsertSent(record: CrmRecord, properties: Record<string, string>, idProperty: string): SentRecord {
  return {
    ...base(record),
    operation: 'upsert',
    request: `POST /crm/v3/objects/${record.object}/batch/upsert`,
    payload: { idProperty, id: record.externalId, objectWriteTraceId: record.externalId, properties },
  };
}

/** batch/update by HubSpot id. */
export function hubspotUpdateSent(record: CrmRecord, properties: Record<string, string>, id: string): SentRecord {
  return {
    ...base(record),
    operation: 'update',
    request: `POST /crm/v3/objects/${record.object}/batch/update`,
    payload: { id, objectWriteTraceId: record.externalId, properties },
  };
}

export function hubspotRecordProblem(record: CrmRecord): string | undefined {
  if (!HUBSPOT_OBJECT_NAME.test(record.object)) return `"${record.object}" is not a HubSpot object type`;
  return record.externalId === '' ? 'the record has no external id' : undefined;
}

/**
 * A record's lookups the mapping already resolved (`by: id`), split as the
 * target splits them: association ids and property values.
 */
export function hubspotIdLookups(record: CrmRecord): { properties: Record<string, string>; associations: HubSpotAssociation[] } {
  const properties: Record<string, string> = {};
  const associations: HubSpotAssociation[] = [];
  for (const [name, lookup] of Object.entries(record.lookups)) {
    if (lookup.by !== 'id' || lookup.value === '') continue;
    const toObject = ASSOCIATION_KEYS[name];
    if (toObject === undefined) properties[name] = lookup.value;
    else associations.push({ toObject, toId: lookup.value });
  }
  return { properties, associations };
}
