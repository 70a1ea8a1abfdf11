import type { LookupRequest } from '../../core/crm-record';
import type { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import type { SentRecord } from '../engine/sent-record';
import type { PreparedRecord, WriteContext } from '../engine/write-engine';
import type { HubSpotAssociation } from './hubspot-payload';

/** The shapes a HubSpot write passes between its steps. */

/** A value one of our lookups found, and whether the cache served it (rather than HubSpot, during this write). */
export interface FoundLookup {
  name: string;
  request: LookupRequest;
  cached: boolean;
}

/** An association, and the lookup that found its id (none when the mapping gave the id). */
export interface Association extends HubSpotAssociation {
  lookup?: FoundLookup;
}

/** A record's lookups as resolved for one write: property values and associations. */
export interface ResolvedHubSpotLookups {
  properties: Record<string, string>;
  resolvedBy: Record<string, FoundLookup>;
  associations: Association[];
  unresolved: string[];
}

/** How a record's `<source>:<callKey>` is kept in the portal (see hubspot-identity.ts). */
export type IdentityMode =
  | { kind: 'upsert'; property: string }
  | { kind: 'search'; property: string | undefined }
  | { kind: 'missing'; error: SyncError };

export type WritableMode = Exclude<IdentityMode, { kind: 'missing' }>;

export interface Prepared extends PreparedRecord {
  knownId: string | undefined;
  mode: WritableMode;
  /** Property values the lookups resolved (hubspot_owner_id...), by property. */
  resolved: Record<string, string>;
  /** Looked-up property values, by property: where each came from. */
  resolvedBy: Record<string, FoundLookup>;
  properties: Record<string, string>;
  associations: Association[];
  unresolved: string[];
  sent?: SentRecord;
  /** A search-mode create carried it in this write and did not refuse it: HubSpot may hold it now. */
  createdBySearchMode?: boolean;
}

export type Outcome =
  | { ok: true; id: string; created: boolean; result: JsonValue; associated: Association[] }
  | { ok: false; error: SyncError; result?: JsonValue };

/** What one write did that outlives its requests. */
export interface HubSpotWriteContext extends WriteContext {
  /** How each object of the write keeps the call key. */
  modes: Map<string, IdentityMode>;
  /** A search-mode create went out: a failure of this write must not be retried before the search lag. */
  searchModeCreateSent: boolean;
}
