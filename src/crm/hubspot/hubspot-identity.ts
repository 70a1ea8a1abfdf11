import type { Config } from '../../config';
import type { CrmRecord } from '../../core/crm-record';
import { SyncError } from '../../core/errors';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { asJson, isRecord } from '../engine/classify-errors';
import { Deadline } from '../engine/deadline';
import { TtlCache } from '../engine/ttl-cache';
import type { HubSpotClient } from './hubspot-client';
import { hubspotError } from './hubspot-errors';
import { hubspotIdentityProperty } from './hubspot-payload';
import type { IdentityMode } from './hubspot-prepared';

/**
 * How the portal keeps each call's `<source>:<callKey>` (HUBSPOT_ID_PROPERTY),
 * asked once per object and cached:
 *  - the property has unique values: "upsert" mode (create, upsert by the
 *    property when HubSpot says the key exists);
 *  - it exists without unique values (or HUBSPOT_ID_PROPERTY_UNIQUE=false, or
 *    HUBSPOT_ID_PROPERTY is empty: calls then use hs_call_external_id):
 *    "search" mode (search the property, create only what is not found);
 *  - it does not exist: "missing", the calls fail with a mapping error.
 * Search mode sees a new record only seconds later: this file also keeps the
 * creates whose outcome is unknown, and the ids this process created.
 */

/**
 * How long HubSpot's search may take to see a record just created (HubSpot
 * documents no figure; a minute leaves a wide margin). A search-mode create
 * whose outcome is unknown is not retried, nor searched for, before then.
 */
export const SEARCH_LAG_MS = 60_000;
const HOUR_MS = 60 * 60 * 1000;
/** How long this process remembers the ids of calls it created (in search mode), for retries whose id the worker lacks. */
const CREATED_IDS_TTL_MS = 10 * 60_000;
/** The id property's definition is read once an hour, a missing one again after a minute (someone may be creating it). */
const IDENTITY_TTL_MS = HOUR_MS;
const IDENTITY_MISSING_TTL_MS = 60_000;

export class HubSpotIdentity {
  readonly idProperty: string;
  private readonly identities = new Map<string, { expiresAt: number; mode: Promise<IdentityMode> }>();
  /** Search mode: `object:externalId` → id of records this process created, until search surely sees them. */
  private readonly createdIds: TtlCache<string>;
  /** Search mode: `object:externalId` → until when a create whose outcome is unknown holds the call back. */
  private readonly createsInDoubt = new Map<string, number>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    private readonly client: HubSpotClient,
    private readonly clock: Clock,
  ) {
    this.idProperty = config.HUBSPOT_ID_PROPERTY.trim();
    this.createdIds = new TtlCache<string>(clock);
  }

  async modes(objects: Set<string>, deadline: Deadline): Promise<Map<string, IdentityMode>> {
    const entries = await Promise.all([...objects].map(async (object) => [object, await deadline.race(this.mode(object))] as const));
    return new Map(entries);
  }

  /** The portal changed under us: the property is read again on the next write. */
  forget(object: string): void {
    this.identities.delete(object);
  }

  /** The id property's definition for `object`, read once and cached; concurrent writes share one request. */
  private mode(object: string): Promise<IdentityMode> {
    if (this.idProperty === '') return Promise.resolve({ kind: 'search', property: hubspotIdentityProperty('', object) });
    const cached = this.identities.get(object);
    if (cached !== undefined && cached.expiresAt > this.clock.now()) return cached.mode;
    const mode = this.readMode(object);
    const entry = { expiresAt: this.clock.now() + IDENTITY_TTL_MS, mode };
    this.identities.set(object, entry);
    mode.then(
      (answer) => {
        if (answer.kind === 'missing') entry.expiresAt = this.clock.now() + IDENTITY_MISSING_TTL_MS;
      },
      () => {
        if (this.identities.get(object) === entry) this.identities.delete(object);
      },
    );
    return mode;
  }

  private async readMode(object: string): Promise<IdentityMode> {
    const property = this.idProperty;
    const deadline = new Deadline(this.config.CRM_TIMEOUT_MS, 'HubSpot');
    try {
      const response = await this.client.call('GET', `/crm/v3/properties/${object}/${encodeURIComponent(property)}`, undefined, deadline);
      if (response.status === 200 && isRecord(response.body)) {
        const unique = response.body['hasUniqueValue'] === true;
        if (unique && this.config.HUBSPOT_ID_PROPERTY_UNIQUE) return { kind: 'upsert', property };
        this.logger.info(
          { object, property, hasUniqueValue: unique },
          unique
            ? 'HUBSPOT_ID_PROPERTY_UNIQUE=false: searching before create instead of upserting'
            : 'the HubSpot id property does not require unique values: searching before create (make it unique for exactly-once writes)',
        );
        return { kind: 'search', property };
      }
      const crmResponse = asJson(response.body);
      if (response.status === 404) {
        return {
          kind: 'missing',
          error: new SyncError(
            'mapping',
            `HubSpot ${object} have no property "${property}" (HUBSPOT_ID_PROPERTY), which keeps each call's key. ` +
              `Create it as a single-line text property with "Require unique values for this property" ticked ` +
              `(Settings → Properties → ${object}, or POST /crm/v3/properties/${object} with "hasUniqueValue": true; see the README, "The unique call_sync_id property"), ` +
              `or set HUBSPOT_ID_PROPERTY to the name of an existing one. Replay the call once it exists.`,
            { httpStatus: 404, crmCode: 'ID_PROPERTY_MISSING', crmResponse },
          ),
        };
      }
      const refusal = hubspotError(response.body, response.status);
      return {
        kind: 'missing',
        error: new SyncError('mapping', `HubSpot refused to describe the ${object} property "${property}" (HUBSPOT_ID_PROPERTY): ${refusal.message}`, {
          httpStatus: response.status,
          crmCode: refusal.crmCode,
          crmResponse,
        }),
      };
    } finally {
      deadline.dispose();
    }
  }

  // ------------------------------------------------ search-mode bookkeeping

  /** The id this process created for the record (search mode), while search may not see it yet. */
  createdId(record: CrmRecord): string | undefined {
    return this.createdIds.get(recordKey(record));
  }

  rememberCreated(record: CrmRecord, id: string): void {
    this.createdIds.set(recordKey(record), id, CREATED_IDS_TTL_MS);
  }

  /** Until when an earlier create of the record, its outcome unknown, holds the call back. */
  inDoubtUntil(record: CrmRecord): number | undefined {
    const now = this.clock.now();
    // Entries share one lifetime, so the oldest are first: drop the expired ones.
    for (const [key, until] of this.createsInDoubt) {
      if (until > now) break;
      this.createsInDoubt.delete(key);
    }
    const until = this.createsInDoubt.get(recordKey(record));
    return until !== undefined && until > now ? until : undefined;
  }

  markInDoubt(record: CrmRecord, until: number): void {
    const key = recordKey(record);
    this.createsInDoubt.delete(key); // re-inserted last: the map stays in expiry order
    this.createsInDoubt.set(key, until);
  }

  settle(record: CrmRecord): void {
    this.createsInDoubt.delete(recordKey(record));
  }

  /** A retryable error that must wait until HubSpot's search can see a call this write may have created. */
  notBeforeSearchLag(error: SyncError): SyncError {
    if (!error.retryable) return error;
    const lagEnds = this.clock.now() + SEARCH_LAG_MS;
    if (error.retryAt !== undefined && error.retryAt.getTime() >= lagEnds) return error;
    return error.recast(error.kind, `${error.message} (not retried before HubSpot's search can see a call created meanwhile)`, new Date(lagEnds));
  }
}

function recordKey(record: CrmRecord): string {
  return `${record.object}:${record.externalId}`;
}
