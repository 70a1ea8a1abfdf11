import { Client } from '@hubspot/api-client';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { CrmRecord, LookupRequest } from '../core/crm-record';
import type { JsonValue } from '../core/json';
import { TtlCache } from './cache';
import { systemClock, type Clock } from '../core/time';
import { Deadline } from './deadline';
import { asJson, groupByItem, isRecord, parseJsonBody, parseRetryAfter, stringField, transportError, worstError } from './errors';
import {
  ASSOCIATION_KEYS,
  HUBSPOT_BATCH_LIMIT,
  HUBSPOT_OBJECT_NAME,
  hubspotCreateSent,
  hubspotIdentityProperty,
  hubspotProperties,
  hubspotRecordProblem,
  hubspotUpdateSent,
  hubspotUpsertSent,
  inlineAssociations,
  type HubSpotAssociation,
} from './hubspot-payload';
import { isolationBudget, sendIsolating, type BatchAttempt } from './isolate';
import { BatchLoader, lookupTtlMs, tolerateRefusedLookup, unlessStaleLookup, type Loaded, type RefusedLookup } from './loader';
import { Pacer } from './pacer';
import { isE164, nationalSignificantNumber, regionOf, toE164 } from '../core/phone';
import { toJson, type SentRecord } from './sent';
import { type CrmTarget, type WriteItem, type WriteResult } from './types';
import { SyncError } from '../core/errors';

/**
 * HubSpot target: calls (and follow-up tasks) written through the batch
 * endpoints, 100 inputs a request, associated with the contact found by
 * phone, owned by the owner found by email.
 *
 * Requests go through the SDK's `apiRequest` (its auth, base path and
 * transport) rather than its typed methods, because the typed methods
 * deserialize an error body into the `Error` model and drop `policyName`,
 * which is what tells the daily quota from the 10-second limit. The SDK's own
 * retries and limiter stay off (numberOfApiCallRetries 0, no limiterOptions):
 * its retry sleeps 10 s on a 429 and would fight the worker's schedule, and
 * our Pacer already reads X-HubSpot-RateLimit-*.
 *
 * Idempotency: the portal is asked once per object (GET
 * /crm/v3/properties/{object}/{HUBSPOT_ID_PROPERTY}, cached) how the call
 * key can be kept:
 *  - the property has unique values: new calls are created (associations
 *    inline) and HubSpot refuses a second create of the same key, which is
 *    then upserted by the property (batch/upsert + idProperty); known calls
 *    are upserted;
 *  - it exists without unique values (or HUBSPOT_ID_PROPERTY_UNIQUE=false,
 *    or HUBSPOT_ID_PROPERTY is empty: calls then use hs_call_external_id):
 *    known ids are updated; the others are searched by the property and
 *    created only when not found. HubSpot's search sees a new record only
 *    seconds later, so a create whose outcome is unknown (a timeout, a 5xx)
 *    holds the call back until SEARCH_LAG_MS has passed, and this process
 *    remembers the ids it created;
 *  - it does not exist: those calls fail with a mapping error (fix the
 *    setup, then replay) saying how to create it, and nothing of them is
 *    written.
 */

const SEARCH_PAGE = 200;
const SEARCH_MAX_PAGES = 10;
/** HubSpot refuses search bodies past 3,000 characters. */
const SEARCH_BODY_MAX = 2_900;
/** HubSpot's daily limit resets at midnight in the portal's time zone, which the API does not tell us: probe hourly. */
const QUOTA_PROBE_MIN_MS = 5 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const ASSOCIATION_TTL_MS = 24 * HOUR_MS;
/**
 * How long HubSpot's search may take to see a record just created. HubSpot
 * documents no figure; a few seconds is usual, so a minute leaves a wide
 * margin. A search-mode create whose outcome is unknown is not retried, and
 * not searched for, before this has passed.
 */
export const SEARCH_LAG_MS = 60_000;
/** How long this process remembers the ids of calls it created (in search mode), for retries whose id the worker lacks. */
const CREATED_IDS_TTL_MS = 10 * 60_000;
/** The id property's definition is read once an hour, a missing one again after a minute (someone may be creating it). */
const IDENTITY_TTL_MS = HOUR_MS;
const IDENTITY_MISSING_TTL_MS = 60_000;
/**
 * batch/upsert refused because the id property no longer has unique values:
 * the calls are retried this soon, when the property's definition is read
 * again and they are written by searching it.
 */
const IDENTITY_CHANGED_RETRY_MS = 3_000;

/** Error categories worth retrying when HubSpot reports them for one input. */
const TRANSIENT_CATEGORIES = new Set(['CONFLICT', 'RATE_LIMITS', 'RATE_LIMIT', 'LOCKED', 'INTERNAL_ERROR']);

interface HsResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

interface IdHit {
  id: string | null;
  candidates: number;
}

/** A value one of our lookups found, and whether the cache served it (rather than HubSpot, during this write). */
interface FoundLookup {
  name: string;
  request: LookupRequest;
  cached: boolean;
}

/** An association, and the lookup that found its id (none when the mapping gave the id). */
interface Association extends HubSpotAssociation {
  lookup?: FoundLookup;
}

/** How a record's `<source>:<callKey>` is kept in the portal (see the file comment). */
type IdentityMode =
  | { kind: 'upsert'; property: string }
  | { kind: 'search'; property: string | undefined }
  | { kind: 'missing'; error: SyncError };

type WritableMode = Exclude<IdentityMode, { kind: 'missing' }>;

interface Prepared {
  itemIndex: number;
  record: CrmRecord;
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

type Outcome =
  | { ok: true; id: string; created: boolean; result: JsonValue; associated: Association[] }
  | { ok: false; error: SyncError; result?: JsonValue };

/** What one write did that outlives its requests. */
interface WriteContext {
  deadline: Deadline;
  /** A search-mode create went out: a failure of this write must not be retried before the search lag. */
  searchModeCreateSent: boolean;
}

/** One entry of a HubSpot error's details: `errors[]`, or the list inside "Property values were not valid: [...]". */
interface ErrorDetail {
  code: string | undefined;
  propertyName: string | undefined;
  message: string | undefined;
}

export interface HubSpotTargetOptions {
  clock?: Clock;
}

export class HubSpotTarget implements CrmTarget {
  readonly name = 'hubspot' as const;
  readonly needs = ['hubspot'] as const;
  readonly maxBatch = HUBSPOT_BATCH_LIMIT;

  private readonly client: Client;
  private readonly clock: Clock;
  private readonly pacer: Pacer;
  private readonly searchPacer: Pacer;
  private readonly timeoutMs: number;
  private readonly region;
  private readonly ttlMs: number;
  private readonly idProperty: string;
  private readonly contacts: BatchLoader<IdHit>;
  private readonly owners: BatchLoader<IdHit>;
  private readonly fieldLoaders = new Map<string, BatchLoader<IdHit>>();
  private readonly associated: TtlCache<true>;
  private readonly identities = new Map<string, { expiresAt: number; mode: Promise<IdentityMode> }>();
  /** Search mode: `object:externalId` → id of records this process created, until search surely sees them. */
  private readonly createdIds: TtlCache<string>;
  /** Search mode: `object:externalId` → until when a create whose outcome is unknown holds the call back. */
  private readonly createsInDoubt = new Map<string, number>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    options: HubSpotTargetOptions = {},
  ) {
    if (config.HUBSPOT_ACCESS_TOKEN === undefined) throw new Error('HUBSPOT_ACCESS_TOKEN is required for the HubSpot target');
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = config.CRM_TIMEOUT_MS;
    this.region = regionOf(config.DEFAULT_PHONE_REGION);
    this.ttlMs = config.LOOKUP_CACHE_TTL_SECONDS * 1000;
    this.idProperty = config.HUBSPOT_ID_PROPERTY.trim();
    this.client = new Client({
      accessToken: config.HUBSPOT_ACCESS_TOKEN,
      basePath: config.HUBSPOT_BASE_URL,
      numberOfApiCallRetries: 0,
    });
    // Until the first answer tells us the portal's burst limit, assume the
    // smallest plan's (100 per 10 s).
    this.pacer = new Pacer({
      name: 'HubSpot',
      clock: this.clock,
      maxConcurrent: 8,
      window: { limit: 100, intervalMs: 10_000 },
      headroom: 0.9,
    });
    // Search is limited separately (about 5 a second per account) and sends
    // no rate-limit headers: stay at HUBSPOT_SEARCH_PER_SECOND (4).
    this.searchPacer = new Pacer({
      name: 'HubSpot search',
      clock: this.clock,
      maxConcurrent: Math.max(4, Math.min(16, config.HUBSPOT_SEARCH_PER_SECOND)),
      window: { limit: config.HUBSPOT_SEARCH_PER_SECOND, intervalMs: 1_000 },
      headroom: 1,
    });
    this.associated = new TtlCache<true>(this.clock);
    this.createdIds = new TtlCache<string>(this.clock);
    this.contacts = new BatchLoader<IdHit>({
      crm: 'HubSpot',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: (hit) => lookupTtlMs(hit.id !== null, this.ttlMs),
      maxKeysPerFetch: 500,
      ready: (deadline) => this.searchPacer.ready(deadline),
      fetch: (keys, deadline) => this.searchContactsByPhone(keys, deadline),
      timeoutMs: this.timeoutMs,
    });
    this.owners = new BatchLoader<IdHit>({
      crm: 'HubSpot',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: (hit) => lookupTtlMs(hit.id !== null, this.ttlMs),
      maxKeysPerFetch: 500,
      ready: (deadline) => this.pacer.ready(deadline),
      fetch: (keys, deadline) => this.fetchOwners(keys, deadline),
      timeoutMs: this.timeoutMs,
    });
  }

  pausedUntil(): Date | undefined {
    return this.pacer.pausedUntil();
  }

  async write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    this.pacer.assertNotPaused();
    const context: WriteContext = { deadline: new Deadline(this.timeoutMs, 'HubSpot', signal), searchModeCreateSent: false };
    try {
      return await this.writeWithin(items, context);
    } catch (err) {
      const { deadline } = context;
      const error = deadline.signal.aborted && !(err instanceof SyncError) ? deadline.signal.reason : transportError(err, 'HubSpot');
      throw context.searchModeCreateSent ? this.notBeforeSearchLag(error) : error;
    } finally {
      context.deadline.dispose();
    }
  }

  private async writeWithin(items: WriteItem[], context: WriteContext): Promise<WriteResult[]> {
    const { deadline } = context;
    const refused = new Map<number, SyncError>();
    const records: Array<{ itemIndex: number; record: CrmRecord }> = [];
    items.forEach((item, itemIndex) => {
      for (const record of item.records.hubspot ?? []) {
        const problem = hubspotRecordProblem(record);
        if (problem !== undefined) refused.set(itemIndex, new SyncError('mapping', problem));
        else records.push({ itemIndex, record });
      }
    });

    // How each object keeps the call key; a call with a record that cannot
    // be kept (the property is missing) is refused whole, nothing written.
    const modes = await this.identityModes(new Set(records.filter((r) => !refused.has(r.itemIndex)).map((r) => r.record.object)), deadline);
    for (const { itemIndex, record } of records) {
      const mode = modes.get(record.object);
      if (mode?.kind === 'missing' && !refused.has(itemIndex)) refused.set(itemIndex, mode.error);
    }
    // A call whose last search-mode create may have gone through waits until search can see it.
    for (const { itemIndex, record } of records) {
      const item = items[itemIndex];
      if (refused.has(itemIndex) || item === undefined || item.knownIds[record.externalId] !== undefined) continue;
      const until = this.createInDoubtUntil(record);
      if (until !== undefined) {
        refused.set(
          itemIndex,
          new SyncError('transient', `an earlier create of ${record.object} ${record.externalId} timed out or failed without an answer; HubSpot's search may not see it yet, so the call waits before it is searched for again`, {
            crmCode: 'CREATE_IN_DOUBT',
            retryAt: new Date(until),
          }),
        );
      }
    }

    const writable = records.filter((r) => !refused.has(r.itemIndex));
    const lookups = await this.resolveLookups(
      writable.map((r) => r.record),
      deadline,
    );
    const prepared: Prepared[] = writable.flatMap(({ itemIndex, record }) => {
      const mode = modes.get(record.object);
      if (mode === undefined || mode.kind === 'missing') return [];
      const knownId = items[itemIndex]?.knownIds[record.externalId];
      const resolved = lookups.get(record) ?? { properties: {}, resolvedBy: {}, associations: [], unresolved: [] };
      return [
        {
          itemIndex,
          record,
          knownId,
          mode,
          resolved: resolved.properties,
          resolvedBy: resolved.resolvedBy,
          properties: hubspotProperties(record, knownId !== undefined, resolved.properties),
          associations: resolved.associations,
          unresolved: resolved.unresolved,
        },
      ];
    });

    const [unique, searched] = await Promise.all([
      this.upsertAll(
        prepared.filter((p) => p.mode.kind === 'upsert'),
        context,
      ),
      this.searchThenWrite(
        prepared.filter((p) => p.mode.kind === 'search'),
        context,
      ),
    ]);
    const outcomes = new Map([...unique, ...searched]);
    await this.associateAll(prepared, outcomes, deadline);
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      if (outcome !== undefined && !outcome.ok) outcomes.set(p, this.unlessStaleLookup(p, outcome));
    }

    const byItem = groupByItem(prepared);
    return items.map((_, itemIndex) => {
      const error = refused.get(itemIndex);
      if (error !== undefined) return { ok: false, error };
      return this.resultFor(byItem.get(itemIndex) ?? [], outcomes);
    });
  }

  private resultFor(mine: Prepared[], outcomes: Map<Prepared, Outcome>): WriteResult {
    const sentRecords: SentRecord[] = mine.flatMap((p) => {
      if (p.sent === undefined) return [];
      const outcome = outcomes.get(p);
      const associations = outcome?.ok === true ? outcome.associated.map((a) => ({ toObject: a.toObject, toId: a.toId })) : [];
      return [{ ...p.sent, ...(associations.length > 0 ? { associations } : {}), ...(p.unresolved.length > 0 ? { unresolved: p.unresolved } : {}) }];
    });
    const sent = toJson({ crm: 'hubspot', records: sentRecords });
    const errors: SyncError[] = [];
    const ids: Record<string, string> = {};
    const responses: JsonValue[] = [];
    let created = false;
    const activity = mine.find((p) => p.record.kind === 'activity') ?? mine[0];
    for (const p of mine) {
      const outcome = outcomes.get(p);
      if (outcome === undefined) {
        errors.push(new SyncError('transient', 'HubSpot returned no result for this record'));
        continue;
      }
      if (outcome.result !== undefined) responses.push(outcome.result);
      if (!outcome.ok) {
        errors.push(outcome.error);
        continue;
      }
      ids[p.record.externalId] = outcome.id;
      if (p === activity) created = outcome.created;
    }
    const error = worstError(errors);
    if (error === undefined) return { ok: true, ids, created, sent, response: responses };
    // The worker keeps no id from a failed call: a record this write created
    // in search mode must not be searched for (and created again) before
    // HubSpot's search can see it.
    const createdHere = mine.some((p) => p.createdBySearchMode === true);
    return { ok: false, error: createdHere ? this.notBeforeSearchLag(error) : error, sent };
  }

  private notBeforeSearchLag(error: SyncError): SyncError {
    if (!error.retryable) return error;
    const lagEnds = this.clock.now() + SEARCH_LAG_MS;
    if (error.retryAt !== undefined && error.retryAt.getTime() >= lagEnds) return error;
    return error.recast(error.kind, `${error.message} (not retried before HubSpot's search can see a call created meanwhile)`, new Date(lagEnds));
  }

  // ------------------------------------------------------- identity modes

  private async identityModes(objects: Set<string>, deadline: Deadline): Promise<Map<string, IdentityMode>> {
    const entries = await Promise.all([...objects].map(async (object) => [object, await deadline.race(this.identityMode(object))] as const));
    return new Map(entries);
  }

  /** The id property's definition for `object`, read once and cached; concurrent writes share one request. */
  private identityMode(object: string): Promise<IdentityMode> {
    if (this.idProperty === '') return Promise.resolve({ kind: 'search', property: hubspotIdentityProperty('', object) });
    const cached = this.identities.get(object);
    if (cached !== undefined && cached.expiresAt > this.clock.now()) return cached.mode;
    const mode = this.readIdentityMode(object);
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

  private async readIdentityMode(object: string): Promise<IdentityMode> {
    const property = this.idProperty;
    const deadline = new Deadline(this.timeoutMs, 'HubSpot');
    try {
      const response = await this.call('GET', `/crm/v3/properties/${object}/${encodeURIComponent(property)}`, undefined, deadline);
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
      const refusal = this.hubspotError(response.body, response.status);
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

  // ---------------------------------------------------------- B3 bookkeeping

  private recordKey(record: CrmRecord): string {
    return `${record.object}:${record.externalId}`;
  }

  private createInDoubtUntil(record: CrmRecord): number | undefined {
    const now = this.clock.now();
    // Entries share one lifetime, so the oldest are first: drop the expired ones.
    for (const [key, until] of this.createsInDoubt) {
      if (until > now) break;
      this.createsInDoubt.delete(key);
    }
    const until = this.createsInDoubt.get(this.recordKey(record));
    return until !== undefined && until > now ? until : undefined;
  }

  // ---------------------------------------------------------------- writes

  /**
   * With a unique id property. Calls the worker has no id for yet (almost
   * always new) are created, their associations inline, which saves the
   * separate association request. The unique property makes a second create
   * of the same call impossible: a create HubSpot refuses because the call's
   * key exists (an earlier attempt it applied though the answer timed out,
   * two workers raced) is upserted by the property, without its create-only
   * properties. Every other refusal stands for this write: it is no sign
   * that the call exists, and an upsert would create a new call without its
   * create-only properties, which later writes never send. So a refusal
   * that names nobody is bisected like any batch, and a call whose create
   * failed transiently (in a 207, or one not isolated) is created again when
   * the worker retries it. Calls with a known id are upserted.
   */
  private async upsertAll(prepared: Prepared[], context: WriteContext): Promise<Map<Prepared, Outcome>> {
    if (prepared.length === 0) return new Map();
    const outcomes = await this.createAll(
      prepared.filter((p) => p.knownId === undefined),
      context,
    );
    const upserts = prepared.filter((p) => {
      const outcome = outcomes.get(p);
      return outcome === undefined || (!outcome.ok && this.existsAlready(p, outcome.error));
    });
    for (const p of upserts) {
      outcomes.delete(p);
      // It exists: the create-only properties were never meant for it.
      p.properties = hubspotProperties(p.record, true, p.resolved);
      p.sent = hubspotUpsertSent(p.record, p.properties, p.mode.property ?? this.idProperty);
    }
    await this.writeChunks(upserts, 'upsert', outcomes, context.deadline);
    return outcomes;
  }

  /**
   * Whether HubSpot refused this call's create because a record with its key
   * exists: "already exists" (409 CONFLICT, as for a contact's email;
   * OBJECT_ALREADY_EXISTS), or a CONFLICT about the id property or this
   * call's key. Not a conflict over another property, and not a refusal this
   * call shared with others that named nobody (NOT_ISOLATED).
   */
  private existsAlready(p: Prepared, error: SyncError): boolean {
    if (error.crmCode === 'NOT_ISOLATED') return false;
    const identity = p.mode.property;
    const details = errorDetails(error.crmResponse);
    if (details.some((d) => d.propertyName !== undefined && d.propertyName !== identity)) return false;
    const texts = [error.message, ...details.map((d) => d.message ?? '')];
    if (error.crmCode === 'OBJECT_ALREADY_EXISTS' || texts.some((t) => /already exists/i.test(t))) return true;
    return error.crmCode === 'CONFLICT' && texts.some((t) => (identity !== undefined && mentions(t, identity)) || quotesKey(t, p.record.externalId));
  }

  /**
   * Without a unique property: update what we know (from the worker, or
   * created by this process moments ago), search the id property for the
   * rest, create only what the search did not find.
   */
  private async searchThenWrite(prepared: Prepared[], context: WriteContext): Promise<Map<Prepared, Outcome>> {
    if (prepared.length === 0) return new Map();
    const found = new Map<Prepared, string>();
    const unknown: Prepared[] = [];
    for (const p of prepared) {
      if (p.knownId !== undefined) continue;
      const created = this.createdIds.get(this.recordKey(p.record));
      if (created !== undefined) found.set(p, created);
      else unknown.push(p);
    }
    await Promise.all(
      chunksByObject(unknown).map(async (chunk) => {
        const object = chunk[0]?.record.object ?? '';
        const property = chunk[0]?.mode.property;
        if (property === undefined) return;
        const hits = await this.searchIds(object, property, chunk.map((p) => p.record.externalId), context.deadline, false);
        for (const p of chunk) {
          const id = hits.get(p.record.externalId.toLowerCase())?.id;
          if (id !== null && id !== undefined) found.set(p, id);
        }
      }),
    );
    const updates: Prepared[] = [];
    const creates: Prepared[] = [];
    for (const p of prepared) {
      const id = p.knownId ?? found.get(p);
      if (id === undefined) {
        creates.push(p);
        continue;
      }
      // It exists: the create-only properties were never meant for it.
      p.properties = hubspotProperties(p.record, true, p.resolved);
      p.sent = hubspotUpdateSent(p.record, p.properties, id);
      updates.push(p);
    }
    const [outcomes, updated] = await Promise.all([
      this.createAll(creates, context),
      this.writeChunks(updates, 'update', new Map(), context.deadline),
    ]);
    for (const [p, outcome] of updated) outcomes.set(p, outcome);
    return outcomes;
  }

  /** batch/create, the identity property and the associations HubSpot knows a default type for inline. */
  private async createAll(creates: Prepared[], context: WriteContext): Promise<Map<Prepared, Outcome>> {
    for (const p of creates) p.sent = hubspotCreateSent(p.record, p.properties, p.mode.property, p.associations);
    const outcomes = new Map<Prepared, Outcome>();
    await Promise.all(
      chunksByObject(creates).map(async (chunk) => {
        const searchMode = chunk[0]?.mode.kind === 'search';
        const answers = await sendIsolating<Prepared, Outcome>(chunk, {
          send: (records) => (searchMode ? this.searchModeCreate(records, context) : this.batchRequest('create', records, context.deadline)),
          failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null }),
          maxExtraRequests: isolationBudget(chunk.length),
        });
        chunk.forEach((p, i) => {
          const outcome = answers[i];
          if (outcome !== undefined) outcomes.set(p, outcome);
        });
      }),
    );
    for (const p of creates) {
      const outcome = outcomes.get(p);
      if (outcome?.ok !== true) continue;
      const inline = inlineAssociations(p.record.object, p.associations);
      for (const a of inline) this.associated.set(associationKey(p.record.object, outcome.id, a), true, ASSOCIATION_TTL_MS);
      outcome.associated.push(...inline);
    }
    return outcomes;
  }

  /**
   * A create without a unique property to stop a second one: until HubSpot
   * has answered, the calls are "in doubt" (a timeout or a 5xx may hide a
   * create that went through). An answer settles them: the ids created are
   * remembered for retries, refusals are final. No answer leaves them in
   * doubt, and this write's failure carries a retryAt past the search lag.
   */
  private async searchModeCreate(records: Prepared[], context: WriteContext): Promise<BatchAttempt<Prepared, Outcome>> {
    const until = this.clock.now() + SEARCH_LAG_MS;
    for (const p of records) {
      const key = this.recordKey(p.record);
      this.createsInDoubt.delete(key); // re-inserted last: the map stays in expiry order
      this.createsInDoubt.set(key, until);
    }
    context.searchModeCreateSent = true;
    let attempt: BatchAttempt<Prepared, Outcome>;
    try {
      attempt = await this.batchRequest('create', records, context.deadline);
    } catch (err) {
      // 429 and 423 are refused before anything is applied.
      if (err instanceof SyncError && (err.httpStatus === 429 || err.httpStatus === 423)) {
        for (const p of records) this.createsInDoubt.delete(this.recordKey(p.record));
      }
      throw err;
    }
    records.forEach((p, i) => {
      const key = this.recordKey(p.record);
      const outcome = attempt.accepted ? attempt.outcomes[i] : undefined;
      if (outcome?.ok === true) this.createdIds.set(key, outcome.id, CREATED_IDS_TTL_MS);
      // Refused, or created: either way no longer in doubt. Without a result
      // of its own (a 2xx that left it out) it stays in doubt.
      if (!attempt.accepted || outcome?.ok === true || (outcome !== undefined && outcome.error.kind !== 'transient')) this.createsInDoubt.delete(key);
      if (outcome === undefined || outcome.ok || outcome.error.kind === 'transient') p.createdBySearchMode = attempt.accepted;
    });
    return attempt;
  }

  private async writeChunks(
    prepared: Prepared[],
    operation: 'upsert' | 'update',
    outcomes: Map<Prepared, Outcome>,
    deadline: Deadline,
  ): Promise<Map<Prepared, Outcome>> {
    await Promise.all(
      chunksByObject(prepared).map(async (chunk) => {
        const answers = await sendIsolating<Prepared, Outcome>(chunk, {
          send: (records) => this.batchRequest(operation, records, deadline),
          failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null }),
          maxExtraRequests: isolationBudget(chunk.length),
        });
        chunk.forEach((p, i) => {
          const outcome = answers[i];
          if (outcome !== undefined) outcomes.set(p, outcome);
        });
      }),
    );
    return outcomes;
  }

  /**
   * One batch request, every input traced by objectWriteTraceId. A create
   * with a partial failure answers 207 with per-input errors; upsert and
   * update refuse the whole batch (400, or 404 for ids that do not exist),
   * which is read for whom it concerns (see rejection()).
   */
  private async batchRequest(operation: 'create' | 'upsert' | 'update', chunk: Prepared[], deadline: Deadline): Promise<BatchAttempt<Prepared, Outcome>> {
    const object = chunk[0]?.record.object ?? '';
    if (chunk.length === 0) return { accepted: true, outcomes: [] };
    const response = await this.call('POST', `/crm/v3/objects/${object}/batch/${operation}`, { inputs: chunk.map((p) => p.sent?.payload ?? {}) }, deadline);
    if ((response.status === 200 || response.status === 201 || response.status === 207) && isRecord(response.body)) {
      const isNew = operation === 'create' ? () => true : operation === 'update' ? () => false : (result: Record<string, unknown>) => result['new'] === true;
      return { accepted: true, outcomes: this.batchOutcomes(chunk, response, isNew) };
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
    const error = this.hubspotError(body, status);
    const message = stringField(body, 'message') ?? '';
    if (/non-unique|not a unique identifier property/i.test(message)) {
      // The portal changed under us: the property is read again on the
      // retry, which then searches it instead (transient: a mapping error
      // would never be retried, and every call of the batch would fail).
      for (const object of new Set(chunk.map((p) => p.record.object))) this.identities.delete(object);
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

  private batchOutcomes(chunk: Prepared[], response: HsResponse, isNew: (result: Record<string, unknown>) => boolean): Outcome[] {
    const body = response.body as Record<string, unknown>;
    const results = Array.isArray(body['results']) ? body['results'].filter(isRecord) : [];
    const errors = Array.isArray(body['errors']) ? body['errors'].filter(isRecord) : [];
    const byTrace = new Map<string, Record<string, unknown>>();
    for (const result of results) {
      const trace = stringField(result, 'objectWriteTraceId');
      const properties = result['properties'];
      const key = trace ?? (this.idProperty === '' ? undefined : stringField(properties, this.idProperty));
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
      if (error !== undefined) return { ok: false, error: this.hubspotError(error, response.status), result: asJson(error) ?? null };
      return { ok: false, error: new SyncError('transient', 'HubSpot answered without a result for this record', { httpStatus: response.status }) };
    });
  }

  /**
   * Associates written records with their contact (company...) through the
   * v4 batch endpoint, skipping pairs this process already associated: the
   * call is idempotent, the cache only saves requests.
   */
  private async associateAll(prepared: Prepared[], outcomes: Map<Prepared, Outcome>, deadline: Deadline): Promise<void> {
    const pending = new Map<string, Array<{ p: Prepared; fromId: string; association: Association }>>();
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      if (outcome?.ok !== true) continue;
      for (const association of p.associations) {
        if (outcome.associated.some((a) => a.toObject === association.toObject && a.toId === association.toId)) continue;
        if (this.associated.has(associationKey(p.record.object, outcome.id, association))) {
          outcome.associated.push(association);
          continue;
        }
        const key = `${p.record.object}/${association.toObject}`;
        const list = pending.get(key) ?? [];
        list.push({ p, fromId: outcome.id, association });
        pending.set(key, list);
      }
    }
    const jobs: Array<Promise<void>> = [];
    for (const [key, list] of pending) {
      const [from = '', to = ''] = key.split('/');
      for (let i = 0; i < list.length; i += HUBSPOT_BATCH_LIMIT) {
        const chunk = list.slice(i, i + HUBSPOT_BATCH_LIMIT);
        jobs.push(
          (async () => {
            const response = await this.call(
              'POST',
              `/crm/v4/associations/${from}/${to}/batch/associate/default`,
              { inputs: chunk.map((c) => ({ from: { id: c.fromId }, to: { id: c.association.toId } })) },
              deadline,
            );
            const body = isRecord(response.body) ? response.body : {};
            const done = new Set(
              (Array.isArray(body['results']) ? body['results'] : []).map(
                (r) => `${idOf(isRecord(r) ? r['from'] : undefined)}>${idOf(isRecord(r) ? r['to'] : undefined)}`,
              ),
            );
            const failure =
              response.status >= 300 || !Array.isArray(body['errors']) || body['errors'].length === 0
                ? this.hubspotError(response.body, response.status)
                : this.hubspotError(body['errors'][0], response.status);
            for (const c of chunk) {
              const outcome = outcomes.get(c.p);
              if (outcome?.ok !== true) continue;
              if (done.has(`${c.fromId}>${c.association.toId}`)) {
                outcome.associated.push(c.association);
                this.associated.set(associationKey(from, c.fromId, c.association), true, ASSOCIATION_TTL_MS);
              } else {
                outcomes.set(c.p, {
                  ok: false,
                  result: outcome.result,
                  error: failure.recast(failure.kind, `written as ${from} ${c.fromId} but not associated with ${to} ${c.association.toId}: ${failure.message}`),
                });
              }
            }
          })(),
        );
      }
    }
    await Promise.all(jobs);
  }

  /**
   * HubSpot refused an id one of our lookups produced: an owner deactivated
   * (INVALID_OWNER_ID), a contact merged or deleted (the association was
   * refused). A value the cache served is retried soon with a fresh lookup,
   * one looked up in this write fails for good (see unlessStaleLookup). An
   * id the mapping gave (`by: id`) is not ours to doubt.
   */
  private unlessStaleLookup(p: Prepared, outcome: Extract<Outcome, { ok: false }>): Outcome {
    const { error } = outcome;
    if (error.kind === 'transient') return outcome;
    const details = errorDetails(error.crmResponse);
    const refused: FoundLookup[] = [];
    for (const [name, found] of Object.entries(p.resolvedBy)) {
      const value = p.resolved[name];
      if (value === undefined) continue;
      const named = details.some(
        (d) => d.propertyName === name && (d.code === 'INVALID_OWNER_ID' || quotesValue(d.message ?? '', value)),
      );
      if (named) refused.push(found);
    }
    if (/associat|exists/i.test(error.message)) {
      for (const a of p.associations) if (a.lookup !== undefined && mentions(error.message, a.toId)) refused.push(a.lookup);
    }
    if (refused.length === 0) return outcome;
    const lookups: RefusedLookup[] = refused.map((found) => ({ name: found.name, cached: found.cached, forget: () => this.forgetLookup(found.name, found.request) }));
    return { ...outcome, error: unlessStaleLookup(error, lookups, this.clock.now()) };
  }

  private forgetLookup(name: string, request: LookupRequest): void {
    const toObject = ASSOCIATION_KEYS[name];
    if (request.by === 'phone') this.contacts.forget(request.value);
    else if (request.by === 'email' && toObject === undefined) this.owners.forget(request.value.trim().toLowerCase());
    else if (request.by === 'email') this.fieldLoader(`${toObject}.email`).forget(request.value.toLowerCase());
    else if (request.by === 'field') this.fieldLoader(`${request.object}.${request.field}`).forget(request.value.toLowerCase());
  }

  // --------------------------------------------------------------- lookups

  private async resolveLookups(
    records: CrmRecord[],
    deadline: Deadline,
  ): Promise<
    Map<CrmRecord, { properties: Record<string, string>; resolvedBy: Record<string, FoundLookup>; associations: Association[]; unresolved: string[] }>
  > {
    const phones = new Set<string>();
    const emails = new Set<string>();
    const byField = new Map<string, Set<string>>();
    const fieldKey = (object: string, field: string) => `${object}.${field}`;
    const addField = (object: string, field: string, value: string) => {
      const key = fieldKey(object, field);
      const values = byField.get(key) ?? new Set<string>();
      values.add(value.toLowerCase());
      byField.set(key, values);
    };
    for (const record of records) {
      for (const [name, lookup] of Object.entries(record.lookups)) {
        const toObject = ASSOCIATION_KEYS[name];
        if (lookup.by === 'phone' && isE164(lookup.value)) phones.add(lookup.value);
        else if (lookup.by === 'email' && toObject !== undefined) addField(toObject, 'email', lookup.value);
        else if (lookup.by === 'email') emails.add(lookup.value.trim().toLowerCase());
        else if (lookup.by === 'field' && HUBSPOT_OBJECT_NAME.test(lookup.object) && HUBSPOT_OBJECT_NAME.test(lookup.field)) addField(lookup.object, lookup.field, lookup.value);
      }
    }
    const [phoneHits, ownerHits, fieldHits] = await Promise.all([
      tolerateRefusedLookup(this.contacts.loadMany(phones, deadline), this.logger, 'HubSpot', 'contact'),
      tolerateRefusedLookup(this.owners.loadMany(emails, deadline), this.logger, 'HubSpot', 'owner'),
      Promise.all(
        [...byField].map(async ([key, values]) => [key, await tolerateRefusedLookup(this.fieldLoader(key).loadMany(values, deadline), this.logger, 'HubSpot', 'field')] as const),
      ).then((entries) => new Map(entries)),
    ]);

    /** The loader's answer a lookup reads, and its key there (none for an id the mapping gave, or a phone lookup for another object). */
    const sourceOf = (toObject: string | undefined, lookup: LookupRequest): { hits: Loaded<IdHit> | undefined; key: string } | undefined => {
      switch (lookup.by) {
        case 'id':
          return undefined;
        case 'phone':
          return toObject === undefined || toObject === 'contacts' ? { hits: phoneHits, key: lookup.value } : undefined;
        case 'email':
          return toObject === undefined
            ? { hits: ownerHits, key: lookup.value.trim().toLowerCase() }
            : { hits: fieldHits.get(fieldKey(toObject, 'email')), key: lookup.value.toLowerCase() };
        case 'field':
          return { hits: fieldHits.get(fieldKey(lookup.object, lookup.field)), key: lookup.value.toLowerCase() };
      }
    };

    const out = new Map<
      CrmRecord,
      { properties: Record<string, string>; resolvedBy: Record<string, FoundLookup>; associations: Association[]; unresolved: string[] }
    >();
    for (const record of records) {
      const properties: Record<string, string> = {};
      const resolvedBy: Record<string, FoundLookup> = {};
      const associations: Association[] = [];
      const unresolved: string[] = [];
      for (const [name, lookup] of Object.entries(record.lookups)) {
        const toObject = ASSOCIATION_KEYS[name];
        const source = sourceOf(toObject, lookup);
        const id = lookup.by === 'id' ? lookup.value : source?.hits?.values.get(source.key)?.id;
        const found = lookup.by === 'id' ? undefined : { name, request: lookup, cached: source?.hits?.cached.has(source.key) ?? false };
        if (typeof id !== 'string' || id === '') unresolved.push(name);
        else if (toObject !== undefined) associations.push({ toObject, toId: id, ...(found === undefined ? {} : { lookup: found }) });
        else {
          properties[name] = id;
          if (found !== undefined) resolvedBy[name] = found;
        }
      }
      out.set(record, { properties, resolvedBy, associations, unresolved });
    }
    return out;
  }

  private fieldLoader(key: string): BatchLoader<IdHit> {
    let loader = this.fieldLoaders.get(key);
    if (loader === undefined) {
      const [object = '', field = ''] = key.split('.');
      loader = new BatchLoader<IdHit>({
        crm: 'HubSpot',
        cache: new TtlCache<IdHit>(this.clock),
        ttlMs: (hit) => lookupTtlMs(hit.id !== null, this.ttlMs),
        maxKeysPerFetch: 500,
        ready: (deadline) => this.searchPacer.ready(deadline),
        fetch: (keys, deadline) => this.searchIds(object, field, keys, deadline, true),
        timeoutMs: this.timeoutMs,
      });
      this.fieldLoaders.set(key, loader);
    }
    return loader;
  }

  /**
   * Contacts by phone, many numbers per search: HubSpot keeps each contact's
   * numbers reduced to digits without country code in
   * hs_searchable_calculated_phone_number / _mobile_number, so we search
   * those with IN over the national numbers, then keep candidates whose
   * stored phone parses to the E.164 we look for (same digits in another
   * country do not match). Several matches are ambiguous: nothing is linked
   * unless HUBSPOT_AMBIGUOUS_MATCH is "first" (oldest contact wins).
   */
  private async searchContactsByPhone(keys: string[], deadline: Deadline): Promise<Map<string, IdHit>> {
    const national = new Map(keys.map((k) => [k, nationalSignificantNumber(k) ?? k.replace(/\D/g, '')]));
    const bodyFor = (values: string[], after?: string) => ({
      filterGroups: [
        { filters: [{ propertyName: 'hs_searchable_calculated_phone_number', operator: 'IN', values }] },
        { filters: [{ propertyName: 'hs_searchable_calculated_mobile_number', operator: 'IN', values }] },
      ],
      properties: ['phone', 'mobilephone'],
      limit: SEARCH_PAGE,
      ...(after === undefined ? {} : { after }),
    });
    const chunks = chunkValues([...new Set(national.values())], (values) => JSON.stringify(bodyFor(values, '10000')).length <= SEARCH_BODY_MAX);
    // Contact ids by each E.164 they hold: one lookup a number, not a scan of every candidate.
    const byNumber = new Map<string, Set<string>>();
    await Promise.all(
      chunks.map(async (values) => {
        for (const row of await this.searchAll('contacts', (after) => bodyFor(values, after), deadline)) {
          const props = row['properties'];
          const id = stringField(row, 'id');
          if (id === undefined) continue;
          for (const raw of [stringField(props, 'phone'), stringField(props, 'mobilephone')]) {
            const number = toE164(raw, this.region);
            if (number === undefined) continue;
            const ids = byNumber.get(number);
            if (ids === undefined) byNumber.set(number, new Set([id]));
            else ids.add(id);
          }
        }
      }),
    );
    const out = new Map<string, IdHit>();
    for (const key of keys) out.set(key, this.pick([...(byNumber.get(key) ?? [])]));
    return out;
  }

  /** Records of `object` whose `property` is one of `values` (case-insensitive), as lookup hits. */
  private async searchIds(object: string, property: string, values: string[], deadline: Deadline, applyPolicy: boolean): Promise<Map<string, IdHit>> {
    const bodyFor = (chunk: string[], after?: string) => ({
      filterGroups: [{ filters: [{ propertyName: property, operator: 'IN', values: chunk }] }],
      properties: [property],
      limit: SEARCH_PAGE,
      ...(after === undefined ? {} : { after }),
    });
    const chunks = chunkValues(values, (chunk) => JSON.stringify(bodyFor(chunk, '10000')).length <= SEARCH_BODY_MAX);
    const matches = new Map<string, string[]>(values.map((v) => [v.toLowerCase(), []]));
    await Promise.all(
      chunks.map(async (chunk) => {
        for (const row of await this.searchAll(object, (after) => bodyFor(chunk, after), deadline)) {
          const value = stringField(row['properties'], property)?.toLowerCase();
          const id = stringField(row, 'id');
          if (value !== undefined && id !== undefined) matches.get(value)?.push(id);
        }
      }),
    );
    const out = new Map<string, IdHit>();
    for (const [value, ids] of matches) {
      const unique = [...new Set(ids)].sort(compareIds);
      // Our own id property must name one record; if a race ever made two,
      // updating the oldest keeps every later write on the same record.
      out.set(value, applyPolicy ? this.pick(unique) : { id: unique[0] ?? null, candidates: unique.length });
    }
    return out;
  }

  private async searchAll(object: string, body: (after?: string) => unknown, deadline: Deadline): Promise<Array<Record<string, unknown>>> {
    const rows: Array<Record<string, unknown>> = [];
    let after: string | undefined;
    for (let page = 0; page < SEARCH_MAX_PAGES; page += 1) {
      const response = await this.call('POST', `/crm/v3/objects/${object}/search`, body(after), deadline, 'search');
      if (response.status !== 200) throw this.hubspotError(response.body, response.status);
      const answer = isRecord(response.body) ? response.body : {};
      rows.push(...(Array.isArray(answer['results']) ? answer['results'].filter(isRecord) : []));
      const paging = answer['paging'];
      after = isRecord(paging) ? stringField(paging['next'], 'after') : undefined;
      if (after === undefined) break;
    }
    return rows;
  }

  private pick(ids: string[]): IdHit {
    const sorted = [...ids].sort(compareIds);
    const first = sorted[0];
    if (first === undefined) return { id: null, candidates: 0 };
    if (sorted.length > 1 && this.config.HUBSPOT_AMBIGUOUS_MATCH === 'none') return { id: null, candidates: sorted.length };
    return { id: first, candidates: sorted.length };
  }

  /**
   * Owners by email. A few unknown emails are asked for one by one
   * (/crm/v3/owners?email=); more at once (a cold start) list every owner
   * instead, a page of 500 being cheaper than one request per agent.
   */
  private async fetchOwners(emails: string[], deadline: Deadline): Promise<Map<string, IdHit>> {
    const found = new Map<string, string[]>(emails.map((e) => [e, []]));
    const collect = (body: unknown) => {
      const results = isRecord(body) && Array.isArray(body['results']) ? body['results'] : [];
      for (const owner of results) {
        const email = stringField(owner, 'email')?.toLowerCase();
        const id = stringField(owner, 'id');
        if (email !== undefined && id !== undefined) found.get(email)?.push(id);
      }
      return isRecord(body) && isRecord(body['paging']) ? stringField(body['paging']['next'], 'after') : undefined;
    };
    if (emails.length <= 3) {
      await Promise.all(
        emails.map(async (email) => {
          const response = await this.call('GET', `/crm/v3/owners?email=${encodeURIComponent(email)}&limit=10`, undefined, deadline);
          if (response.status !== 200) throw this.hubspotError(response.body, response.status);
          collect(response.body);
        }),
      );
    } else {
      let after: string | undefined;
      for (let page = 0; page < 20; page += 1) {
        const response = await this.call('GET', `/crm/v3/owners?limit=500${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`, undefined, deadline);
        if (response.status !== 200) throw this.hubspotError(response.body, response.status);
        after = collect(response.body);
        if (after === undefined) break;
      }
    }
    const out = new Map<string, IdHit>();
    for (const [email, ids] of found) out.set(email, this.pick(ids));
    return out;
  }

  // ------------------------------------------------------------------ HTTP

  /**
   * One request, paced, within the write's deadline. Failures of the whole
   * request (token, scopes, rate, quota, server) are thrown as SyncError;
   * other answers (2xx, 207, 400, 404, 409) are returned for the caller.
   */
  private async call(method: 'GET' | 'POST', path: string, body: unknown, deadline: Deadline, kind: 'api' | 'search' = 'api'): Promise<HsResponse> {
    const pacer = kind === 'search' ? this.searchPacer : this.pacer;
    const release = await pacer.acquire(deadline);
    try {
      let status: number;
      let text: string;
      const headers: Record<string, string> = {};
      try {
        const response = await deadline.race(this.client.apiRequest({ method, path, ...(body === undefined ? {} : { body }) }));
        status = response.status;
        response.headers.forEach((value, name) => {
          headers[name.toLowerCase()] = value;
        });
        text = await deadline.race(response.text());
      } catch (err) {
        if (deadline.signal.aborted) throw deadline.signal.reason;
        throw transportError(err, 'HubSpot');
      }
      const response: HsResponse = { status, headers, body: parseJsonBody(text) };
      if (kind === 'api') this.observe(response);
      this.throwIfRequestFailed(response, kind);
      return response;
    } finally {
      release();
    }
  }

  private observe(response: HsResponse): void {
    const h = response.headers;
    const max = Number(h['x-hubspot-ratelimit-max']);
    const remaining = Number(h['x-hubspot-ratelimit-remaining']);
    const interval = Number(h['x-hubspot-ratelimit-interval-milliseconds']);
    if (Number.isFinite(max) && Number.isFinite(remaining) && Number.isFinite(interval)) this.pacer.observeWindow(max, remaining, interval);
    const dailyRemaining = h['x-hubspot-ratelimit-daily-remaining'];
    if (dailyRemaining !== undefined && Number(dailyRemaining) <= 0) {
      this.pauseForQuota(`HubSpot daily API limit spent (${h['x-hubspot-ratelimit-daily'] ?? '?'} requests)`, undefined, undefined, undefined);
    }
  }

  private pauseForQuota(message: string, retryAfter: number | undefined, httpStatus: number | undefined, crmResponse: JsonValue | undefined): SyncError {
    const now = this.clock.now();
    const until = retryAfter ?? nextHourlyProbe(now);
    const make = (retryAt: Date) => new SyncError('quota', message, { retryAt, httpStatus, crmResponse, crmCode: 'DAILY' });
    this.pacer.pauseForQuota(until, make);
    this.logger.warn({ until: new Date(until).toISOString() }, 'HubSpot daily quota spent; pausing calls');
    return make(new Date(until));
  }

  private throwIfRequestFailed(response: HsResponse, kind: 'api' | 'search'): void {
    const { status, body, headers } = response;
    if (status < 300 || status === 207) return;
    const now = this.clock.now();
    const retryAfter = parseRetryAfter(headers['retry-after'], now);
    const crmResponse = asJson(body);
    const category = stringField(body, 'category');
    const policy = stringField(body, 'policyName');
    const message = stringField(body, 'message') ?? `HTTP ${status}`;
    if (status === 401 || status === 403) {
      throw new SyncError('auth', `HubSpot refused the access token: ${category ?? status}: ${message}`, { httpStatus: status, crmCode: category, crmResponse });
    }
    if (status === 429 && policy === 'DAILY') {
      throw this.pauseForQuota(`HubSpot daily API limit reached: ${message}`, retryAfter, status, crmResponse);
    }
    if (status === 429 || status === 423 || status === 477 || status === 408 || status >= 500) {
      // Without Retry-After: the 10-second window needs up to its interval to
      // free a slot, a per-second (search) limit a second, 423 Locked two.
      const fallback =
        status === 423 ? 2_000 : status === 429 && (policy === 'TEN_SECONDLY_ROLLING' || policy === undefined) && kind === 'api' ? 10_000 : status === 429 ? 1_000 : 0;
      const until = retryAfter ?? (fallback > 0 ? now + fallback : undefined);
      if (until !== undefined) (kind === 'search' ? this.searchPacer : this.pacer).block(until, `HTTP ${status}${policy === undefined ? '' : ` ${policy}`}`);
      throw new SyncError('transient', `HubSpot answered HTTP ${status}${policy === undefined ? '' : ` ${policy}`}: ${message}`, {
        httpStatus: status,
        crmCode: policy ?? category ?? `HTTP_${status}`,
        crmResponse,
        retryAt: until === undefined ? undefined : new Date(until),
      });
    }
  }

  /** A rejection (a whole 4xx answer, or one input's entry in `errors`) as a SyncError. */
  private hubspotError(body: unknown, status: number): SyncError {
    const category = stringField(body, 'category') ?? `HTTP_${status}`;
    const details = isRecord(body) && Array.isArray(body['errors']) ? body['errors'] : [];
    const detail = stringField(details[0], 'message');
    const message = detail ?? stringField(body, 'message') ?? 'request rejected';
    // A property the portal does not have is the mapping's to fix, not the record's.
    const kind = TRANSIENT_CATEGORIES.has(category)
      ? 'transient'
      : errorDetails(body).some((d) => d.code === 'PROPERTY_DOESNT_EXIST')
        ? 'mapping'
        : 'permanent';
    return new SyncError(kind, `${category}: ${message}`, { httpStatus: status, crmCode: category, crmResponse: asJson(body) });
  }
}

// ------------------------------------------------------------------ helpers

function associationKey(object: string, id: string, association: HubSpotAssociation): string {
  return `${object}:${id}>${association.toObject}:${association.toId}`;
}

function chunksByObject(prepared: Prepared[]): Prepared[][] {
  const byObject = new Map<string, Prepared[]>();
  for (const p of prepared) {
    const list = byObject.get(p.record.object) ?? [];
    list.push(p);
    byObject.set(p.record.object, list);
  }
  const chunks: Prepared[][] = [];
  for (const list of byObject.values()) {
    for (let i = 0; i < list.length; i += HUBSPOT_BATCH_LIMIT) chunks.push(list.slice(i, i + HUBSPOT_BATCH_LIMIT));
  }
  return chunks;
}

/** Greedy chunks of at most 100 values that still `fit` (HubSpot's body size limit). */
function chunkValues(values: string[], fits: (chunk: string[]) => boolean): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  for (const value of values) {
    const next = [...current, value];
    if (current.length > 0 && (next.length > HUBSPOT_BATCH_LIMIT || !fits(next))) {
      chunks.push(current);
      current = [value];
    } else {
      current = next;
    }
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/**
 * The details of a HubSpot error body: each `errors[]` entry (code,
 * context.propertyName, message), and the validation results HubSpot embeds
 * as JSON in "Property values were not valid: [{...,"error","name"}]".
 */
export function errorDetails(body: unknown): ErrorDetail[] {
  if (!isRecord(body)) return [];
  const details: ErrorDetail[] = [];
  for (const entry of Array.isArray(body['errors']) ? body['errors'] : []) {
    const context = isRecord(entry) ? entry['context'] : undefined;
    const names = isRecord(context) && Array.isArray(context['propertyName']) ? context['propertyName'] : [];
    details.push({
      code: stringField(entry, 'code'),
      propertyName: typeof names[0] === 'string' ? names[0] : undefined,
      message: stringField(entry, 'message'),
    });
  }
  const message = stringField(body, 'message') ?? '';
  const embedded = message.indexOf('[');
  if (embedded >= 0 && /not valid/i.test(message.slice(0, embedded))) {
    const parsed = parseJsonBody(message.slice(embedded));
    for (const entry of Array.isArray(parsed) ? parsed : []) {
      details.push({ code: stringField(entry, 'error'), propertyName: stringField(entry, 'name'), message: stringField(entry, 'message') });
    }
  }
  return details;
}

/**
 * Whether a validation message is about this value: HubSpot starts it with
 * the value ("EXPLODED was not one of the allowed options: …", "123 is not a
 * valid owner id"); the list after the first colon (the allowed options)
 * names values that are fine.
 */
function quotesValue(message: string, value: string): boolean {
  return mentions(message.split(': ')[0] ?? '', value);
}

/** Whether `text` holds `value` as a whole word (id 1001 is not in 11001). */
function mentions(text: string, value: string): boolean {
  if (value === '') return false;
  return new RegExp(`(^|[^\\w])${escapeRegExp(value)}([^\\w]|$)`).test(text);
}

/**
 * Whether `text` quotes this call key as a whole value ("call_sync_id=hcc:9
 * already exists" quotes hcc:9, not hcc:9:callback nor hcc:90).
 */
function quotesKey(text: string, key: string): boolean {
  if (key === '') return false;
  return new RegExp(`(^|[\\s="'\\[(])${escapeRegExp(key)}(?=$|[\\s"'\\]),;]|\\.(?:\\s|$))`).test(text);
}

function escapeRegExp(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** An object id as HubSpot writes it: a string, in some answers a number. */
function idOf(value: unknown): string {
  if (!isRecord(value)) return '';
  const id = value['id'];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : '';
}

function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function nextHourlyProbe(now: number): number {
  const next = Math.ceil((now + 1) / HOUR_MS) * HOUR_MS;
  return next - now < QUOTA_PROBE_MIN_MS ? next + HOUR_MS : next;
}
