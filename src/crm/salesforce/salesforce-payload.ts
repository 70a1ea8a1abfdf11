import type { CrmFieldValue, CrmRecord } from '../../core/crm-record';
import type { JsonValue } from '../../core/json';
import { copyFields, type SentRecord } from '../engine/sent-record';

/** A Salesforce API name (Task, WhoId, Call_Sync_Id__c): what may be spliced into a path or SOQL. */
export const API_NAME = /^[A-Za-z][A-Za-z0-9_]*$/;

/**
 * How a CrmRecord becomes the element of an sObject Collections upsert.
 * Shared by the Salesforce target and dry-run so that dry-run shows exactly
 * what the target sends; kept apart from the target's session so that dry-run does
 * not load jsforce.
 */

export const SALESFORCE_API_VERSION_DEFAULT = '62.0';

/**
 * Fields the org accepts on create and refuses on update whatever the
 * mapping says: a mapping override that forgets `createOnly` must not make
 * every update of an existing Task fail.
 */
const ALWAYS_CREATE_ONLY: Record<string, readonly string[]> = {
  Task: ['TaskSubtype'],
  Event: ['EventSubtype'],
};

/** The record's create-only fields: those its mapping declares and those Salesforce always treats so. */
export function salesforceCreateOnly(record: CrmRecord): string[] {
  return [...new Set([...record.createOnly, ...(ALWAYS_CREATE_ONLY[record.object] ?? [])])];
}

/** The exact record element sent to sObject Collections for one CrmRecord. */
export function buildSalesforceRecord(
  record: CrmRecord,
  externalIdField: string,
  lookups: Record<string, string>,
  omitCreateOnly: boolean,
): Record<string, CrmFieldValue | { type: string }> {
  const fields = copyFields(record.fields, new Set(omitCreateOnly ? salesforceCreateOnly(record) : []));
  return { attributes: { type: record.object }, ...fields, ...lookups, [externalIdField]: record.externalId };
}

export function salesforceCollectionPath(version: string, object: string, externalIdField: string): string {
  return `/services/data/v${version}/composite/sobjects/${object}/${externalIdField}`;
}

/** How a record sent in an sObject Collections upsert is shown in WriteResult.sent (by the target and by dry-run). */
export function salesforceSentRecord(
  record: CrmRecord,
  version: string,
  externalIdField: string,
  payload: Record<string, CrmFieldValue | { type: string }>,
): SentRecord {
  return {
    kind: record.kind,
    object: record.object,
    externalId: record.externalId,
    operation: 'upsert',
    request: `PATCH ${salesforceCollectionPath(version, record.object, externalIdField)}`,
    payload: payload as { [key: string]: JsonValue },
  };
}

export function salesforceRecordProblem(record: CrmRecord): string | undefined {
  if (!API_NAME.test(record.object)) return `"${record.object}" is not a Salesforce object name`;
  if (record.externalId === '') return 'the record has no external id';
  const bad = Object.keys(record.fields).find((name) => !API_NAME.test(name));
  return bad === undefined ? undefined : `"${bad}" is not a Salesforce field name`;
}

/** Lookups the mapping already resolved (`by: id`): written as they are, no CRM needed. */
export function idLookups(record: CrmRecord): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [field, lookup] of Object.entries(record.lookups)) {
    if (lookup.by === 'id' && lookup.value !== '') values[field] = lookup.value;
  }
  return values;
}
