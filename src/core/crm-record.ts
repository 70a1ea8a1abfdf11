/** The records a mapping builds for a CRM, before the target resolves their lookups. */

/** The record shapes a mapping can build: one per CRM (`mappings/crm/<kind>.yaml`). */
export const CRM_KINDS = ['salesforce', 'hubspot'] as const;
export type CrmKind = (typeof CRM_KINDS)[number];
/** Each kind's name for people (tools' output). */
export const CRM_TITLES: Record<CrmKind, string> = { salesforce: 'Salesforce', hubspot: 'HubSpot' };

/** How a target resolves a reference field (WhoId, OwnerId, a contact association...). */
export type LookupRequest =
  /** Contact before Lead (Salesforce) / contact (HubSpot) whose phone fields match this E.164 number. */
  | { by: 'phone'; value: string }
  /** User (Salesforce) / owner (HubSpot) with this email. */
  | { by: 'email'; value: string }
  /** A record of `object` whose `field` equals value (e.g. Account by AccountNumber). */
  | { by: 'field'; object: string; field: string; value: string }
  /** Already an id: written as is. */
  | { by: 'id'; value: string };

export type CrmFieldValue = string | number | boolean | null;

/** One record to upsert: the call activity itself, or its follow-up task. */
export interface CrmRecord {
  kind: 'activity' | 'followup';
  /** Salesforce Task / HubSpot calls or tasks. */
  object: string;
  /** Unique per record: `<source>:<callKey>` or `<source>:<callKey>:callback`. */
  externalId: string;
  /** Exactly the fields to write, lookups not yet resolved. */
  fields: Record<string, CrmFieldValue>;
  /** Fields that may be sent on create only (Salesforce TaskSubtype). */
  createOnly: string[];
  /** Reference fields to resolve before writing, by field name (WhoId, WhatId, OwnerId, hubspot_owner_id, contact association...). */
  lookups: Record<string, LookupRequest>;
}
