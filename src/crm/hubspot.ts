import { Client } from '@hubspot/api-client';
import type { Config } from '../config';
import type { Logger } from '../log';
import type { CrmFieldValue, CrmRecord, JsonValue } from '../mapping/types';
import { TtlCache } from './cache';
import { systemClock, type Clock } from './clock';
import { Deadline } from './deadline';
import { asJson, groupByItem, isRecord, parseJsonBody, parseRetryAfter, stringField, transportError, worstError } from './errors';
import { BatchLoader, tolerateRefusedLookup } from './loader';
import { Pacer } from './pacer';
import { isE164, nationalSignificantNumber, regionOf, toE164 } from './phone';
import { toJson, type SentRecord } from './sent';
import { SyncError, type CrmTarget, type WriteItem, type WriteResult } from './types';

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
 * Idempotency, two ways:
 *  - HUBSPOT_ID_PROPERTY is a unique-value property (the default,
 *    `call_sync_id`): batch/upsert by it, so a repeated write updates.
 *  - otherwise (HUBSPOT_ID_PROPERTY_UNIQUE=false, or no property: calls then
 *    use the standard hs_call_external_id): ids the worker already has
 *    (WriteItem.knownIds) are updated; the others are searched by the id
 *    property first and created only when not found.
 */

const BATCH_LIMIT = 100;
const SEARCH_PAGE = 200;
const SEARCH_MAX_PAGES = 10;
/** HubSpot refuses search bodies past 3,000 characters. */
const SEARCH_BODY_MAX = 2_900;
/** HubSpot's daily limit resets at midnight in the portal's time zone, which the API does not tell us: probe hourly. */
const QUOTA_PROBE_MIN_MS = 5 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
const NEGATIVE_TTL_CAP_MS = 60_000;
const ASSOCIATION_TTL_MS = 24 * HOUR_MS;
const OBJECT_NAME = /^[A-Za-z0-9_-]+$/;

/** Lookup keys that are associations rather than properties. */
const ASSOCIATION_KEYS: Record<string, string> = {
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

interface Association {
  toObject: string;
  toId: string;
}

interface Prepared {
  itemIndex: number;
  record: CrmRecord;
  knownId: string | undefined;
  properties: Record<string, string>;
  associations: Association[];
  unresolved: string[];
  sent?: SentRecord;
}

type Outcome =
  | { ok: true; id: string; created: boolean; result: JsonValue; associated: Association[] }
  | { ok: false; error: SyncError; result?: JsonValue };

export interface HubSpotTargetOptions {
  clock?: Clock;
}

export class HubSpotTarget implements CrmTarget {
  readonly name = 'hubspot' as const;
  readonly needs = ['hubspot'] as const;
  readonly maxBatch = BATCH_LIMIT;

  private readonly client: Client;
  private readonly clock: Clock;
  private readonly pacer: Pacer;
  private readonly searchPacer: Pacer;
  private readonly timeoutMs: number;
  private readonly region;
  private readonly ttlMs: number;
  private readonly idProperty: string;
  private readonly upsertMode: boolean;
  private readonly contacts: BatchLoader<IdHit>;
  private readonly owners: BatchLoader<IdHit>;
  private readonly fieldLoaders = new Map<string, BatchLoader<IdHit>>();
  private readonly associated: TtlCache<true>;

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
    this.upsertMode = this.idProperty !== '' && config.HUBSPOT_ID_PROPERTY_UNIQUE;
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
    const ttlFor = (hit: IdHit) => (hit.id === null ? Math.min(this.ttlMs, NEGATIVE_TTL_CAP_MS) : this.ttlMs);
    this.contacts = new BatchLoader<IdHit>({
      crm: 'HubSpot',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: ttlFor,
      maxKeysPerFetch: 500,
      ready: (deadline) => this.searchPacer.ready(deadline),
      fetch: (keys, deadline) => this.searchContactsByPhone(keys, deadline),
      timeoutMs: this.timeoutMs,
    });
    this.owners = new BatchLoader<IdHit>({
      crm: 'HubSpot',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: ttlFor,
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
    const deadline = new Deadline(this.timeoutMs, 'HubSpot', signal);
    try {
      return await this.writeWithin(items, deadline);
    } catch (err) {
      throw deadline.signal.aborted && !(err instanceof SyncError) ? deadline.signal.reason : transportError(err, 'HubSpot');
    } finally {
      deadline.dispose();
    }
  }

  private async writeWithin(items: WriteItem[], deadline: Deadline): Promise<WriteResult[]> {
    const mappingErrors = new Map<number, SyncError>();
    const records: Array<{ itemIndex: number; record: CrmRecord }> = [];
    items.forEach((item, itemIndex) => {
      for (const record of item.records.hubspot ?? []) {
        if (!OBJECT_NAME.test(record.object)) {
          mappingErrors.set(itemIndex, new SyncError('mapping', `"${record.object}" is not a HubSpot object type`));
        } else if (record.externalId === '') {
          mappingErrors.set(itemIndex, new SyncError('mapping', 'the record has no external id'));
        } else {
          records.push({ itemIndex, record });
        }
      }
    });
    const writable = records.filter((r) => !mappingErrors.has(r.itemIndex));
    const lookups = await this.resolveLookups(
      writable.map((r) => r.record),
      deadline,
    );
    const prepared: Prepared[] = writable.map(({ itemIndex, record }) => {
      const knownId = items[itemIndex]?.knownIds[record.externalId];
      const resolved = lookups.get(record) ?? { properties: {}, associations: [], unresolved: [] };
      const omit = new Set(knownId === undefined ? [] : record.createOnly);
      const properties: Record<string, string> = {};
      for (const [name, value] of Object.entries(record.fields)) {
        if (!omit.has(name)) properties[name] = propertyValue(value);
      }
      Object.assign(properties, resolved.properties);
      return { itemIndex, record, knownId, properties, associations: resolved.associations, unresolved: resolved.unresolved };
    });

    const outcomes = this.upsertMode ? await this.upsertAll(prepared, deadline) : await this.searchThenWrite(prepared, deadline);
    await this.associateAll(prepared, outcomes, deadline);

    const byItem = groupByItem(prepared);
    return items.map((_, itemIndex) => {
      const mappingError = mappingErrors.get(itemIndex);
      if (mappingError !== undefined) return { ok: false, error: mappingError };
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
    if (error !== undefined) return { ok: false, error, sent };
    return { ok: true, ids, created, sent, response: responses };
  }

  // ---------------------------------------------------------------- writes

  /**
   * With a unique id property. Calls the worker has no id for yet (almost
   * always new) are created, their associations inline, which saves the
   * separate association request; the unique property makes a second create
   * of the same call impossible, so any create HubSpot refuses (the call
   * exists after a timed-out attempt, two workers raced) is upserted instead.
   * Calls with a known id are upserted by the id property.
   */
  private async upsertAll(prepared: Prepared[], deadline: Deadline): Promise<Map<Prepared, Outcome>> {
    const outcomes = await this.createAll(
      prepared.filter((p) => p.knownId === undefined),
      deadline,
    );
    const upserts = prepared.filter((p) => outcomes.get(p)?.ok !== true);
    for (const p of upserts) {
      outcomes.delete(p);
      p.sent = {
        kind: p.record.kind,
        object: p.record.object,
        externalId: p.record.externalId,
        operation: 'upsert',
        request: `POST /crm/v3/objects/${p.record.object}/batch/upsert`,
        payload: { idProperty: this.idProperty, id: p.record.externalId, objectWriteTraceId: p.record.externalId, properties: p.properties },
      };
    }
    await this.writeChunks(upserts, 'upsert', outcomes, deadline);
    return outcomes;
  }

  /**
   * Without a unique property: update what we know, search the id property
   * for the rest, create only what the search did not find.
   */
  private async searchThenWrite(prepared: Prepared[], deadline: Deadline): Promise<Map<Prepared, Outcome>> {
    const unknown = prepared.filter((p) => p.knownId === undefined);
    const found = new Map<Prepared, string>();
    await Promise.all(
      chunksByObject(unknown).map(async (chunk) => {
        const object = chunk[0]?.record.object ?? '';
        const property = this.identityProperty(object);
        if (property === undefined) return;
        const hits = await this.searchIds(object, property, chunk.map((p) => p.record.externalId), deadline, false);
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
      // Found by search: the create-only fields were never meant for it.
      for (const field of p.record.createOnly) delete p.properties[field];
      p.sent = {
        kind: p.record.kind,
        object: p.record.object,
        externalId: p.record.externalId,
        operation: 'update',
        request: `POST /crm/v3/objects/${p.record.object}/batch/update`,
        payload: { id, objectWriteTraceId: p.record.externalId, properties: p.properties },
      };
      updates.push(p);
    }
    const [outcomes, updated] = await Promise.all([this.createAll(creates, deadline), this.writeChunks(updates, 'update', new Map(), deadline)]);
    for (const [p, outcome] of updated) outcomes.set(p, outcome);
    return outcomes;
  }

  /** batch/create, the id property and the associations HubSpot knows a default type for inline. */
  private async createAll(creates: Prepared[], deadline: Deadline): Promise<Map<Prepared, Outcome>> {
    for (const p of creates) {
      const property = this.identityProperty(p.record.object);
      const inline = inlineAssociations(p);
      p.sent = {
        kind: p.record.kind,
        object: p.record.object,
        externalId: p.record.externalId,
        operation: 'create',
        request: `POST /crm/v3/objects/${p.record.object}/batch/create`,
        payload: {
          objectWriteTraceId: p.record.externalId,
          properties: property === undefined ? p.properties : { ...p.properties, [property]: p.record.externalId },
          ...(inline.length > 0
            ? {
                associations: inline.map((a) => ({
                  to: { id: a.toId },
                  types: [{ associationCategory: 'HUBSPOT_DEFINED', associationTypeId: ASSOCIATION_TYPE_IDS[`${p.record.object}:${a.toObject}`] ?? 0 }],
                })),
              }
            : {}),
        },
      };
    }
    const outcomes = await this.writeChunks(creates, 'create', new Map(), deadline);
    for (const p of creates) {
      const outcome = outcomes.get(p);
      if (outcome?.ok !== true) continue;
      const inline = inlineAssociations(p);
      for (const a of inline) this.associated.set(associationKey(p.record.object, outcome.id, a), true, ASSOCIATION_TTL_MS);
      outcome.associated.push(...inline);
    }
    return outcomes;
  }

  private async writeChunks(
    prepared: Prepared[],
    operation: 'upsert' | 'create' | 'update',
    outcomes: Map<Prepared, Outcome>,
    deadline: Deadline,
  ): Promise<Map<Prepared, Outcome>> {
    await Promise.all(
      chunksByObject(prepared).map(async (chunk) => {
        const object = chunk[0]?.record.object ?? '';
        const answers = await this.batchWrite(
          `/crm/v3/objects/${object}/batch/${operation}`,
          chunk,
          (p) => p.sent?.payload ?? {},
          deadline,
          operation === 'create' ? () => true : operation === 'update' ? () => false : (result) => result['new'] === true,
          // A refused create is retried as an upsert; no need to isolate it here.
          operation !== 'create' || !this.upsertMode,
        );
        chunk.forEach((p, i) => {
          const outcome = answers[i];
          if (outcome !== undefined) outcomes.set(p, outcome);
        });
      }),
    );
    return outcomes;
  }

  /**
   * One batch request, every input traced by objectWriteTraceId so a partial
   * failure comes back as 207 with per-input errors instead of failing the
   * batch. A 400 for the whole batch is split in halves until the rejected
   * input is alone and the others go through.
   */
  private async batchWrite(
    path: string,
    chunk: Prepared[],
    input: (p: Prepared) => JsonValue,
    deadline: Deadline,
    isNew: (result: Record<string, unknown>) => boolean,
    bisect: boolean,
  ): Promise<Outcome[]> {
    if (chunk.length === 0) return [];
    const response = await this.call('POST', path, { inputs: chunk.map(input) }, deadline);
    if ((response.status === 200 || response.status === 201 || response.status === 207) && isRecord(response.body)) {
      return this.batchOutcomes(chunk, response, isNew);
    }
    if (response.status === 400 && chunk.length > 1 && bisect) {
      const middle = Math.ceil(chunk.length / 2);
      const left = await this.batchWrite(path, chunk.slice(0, middle), input, deadline, isNew, bisect);
      const right = await this.batchWrite(path, chunk.slice(middle), input, deadline, isNew, bisect);
      return [...left, ...right];
    }
    const error = this.hubspotError(response.body, response.status);
    return chunk.map(() => ({ ok: false, error, result: asJson(response.body) ?? null }));
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
      for (let i = 0; i < list.length; i += BATCH_LIMIT) {
        const chunk = list.slice(i, i + BATCH_LIMIT);
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
                  error: new SyncError(failure.kind, `written as ${from} ${c.fromId} but not associated with ${to} ${c.association.toId}: ${failure.message}`, {
                    httpStatus: failure.httpStatus,
                    crmCode: failure.crmCode,
                    crmResponse: failure.crmResponse,
                  }),
                });
              }
            }
          })(),
        );
      }
    }
    await Promise.all(jobs);
  }

  private identityProperty(object: string): string | undefined {
    if (this.idProperty !== '') return this.idProperty;
    return object === 'calls' ? 'hs_call_external_id' : undefined;
  }

  // --------------------------------------------------------------- lookups

  private async resolveLookups(
    records: CrmRecord[],
    deadline: Deadline,
  ): Promise<Map<CrmRecord, { properties: Record<string, string>; associations: Association[]; unresolved: string[] }>> {
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
        else if (lookup.by === 'field' && OBJECT_NAME.test(lookup.object) && OBJECT_NAME.test(lookup.field)) addField(lookup.object, lookup.field, lookup.value);
      }
    }
    const [phoneHits, ownerHits, fieldHits] = await Promise.all([
      tolerateRefusedLookup(this.contacts.loadMany(phones, deadline), this.logger, 'HubSpot', 'contact'),
      tolerateRefusedLookup(this.owners.loadMany(emails, deadline), this.logger, 'HubSpot', 'owner'),
      Promise.all(
        [...byField].map(async ([key, values]) => [key, await tolerateRefusedLookup(this.fieldLoader(key).loadMany(values, deadline), this.logger, 'HubSpot', 'field')] as const),
      ).then((entries) => new Map(entries)),
    ]);

    const out = new Map<CrmRecord, { properties: Record<string, string>; associations: Association[]; unresolved: string[] }>();
    for (const record of records) {
      const properties: Record<string, string> = {};
      const associations: Association[] = [];
      const unresolved: string[] = [];
      for (const [name, lookup] of Object.entries(record.lookups)) {
        const toObject = ASSOCIATION_KEYS[name];
        let id: string | null | undefined;
        if (lookup.by === 'id') id = lookup.value;
        else if (lookup.by === 'phone') id = toObject === undefined || toObject === 'contacts' ? phoneHits.get(lookup.value)?.id : undefined;
        else if (lookup.by === 'email') {
          id = toObject === undefined ? ownerHits.get(lookup.value.trim().toLowerCase())?.id : fieldHits.get(fieldKey(toObject, 'email'))?.get(lookup.value.toLowerCase())?.id;
        } else id = fieldHits.get(fieldKey(lookup.object, lookup.field))?.get(lookup.value.toLowerCase())?.id;
        if (typeof id !== 'string' || id === '') unresolved.push(name);
        else if (toObject !== undefined) associations.push({ toObject, toId: id });
        else properties[name] = id;
      }
      out.set(record, { properties, associations, unresolved });
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
        ttlMs: (hit) => (hit.id === null ? Math.min(this.ttlMs, NEGATIVE_TTL_CAP_MS) : this.ttlMs),
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
    const candidates: Array<{ id: string; numbers: Set<string> }> = [];
    await Promise.all(
      chunks.map(async (values) => {
        for (const row of await this.searchAll('contacts', (after) => bodyFor(values, after), deadline)) {
          const props = row['properties'];
          const numbers = new Set(
            [stringField(props, 'phone'), stringField(props, 'mobilephone')].map((n) => toE164(n, this.region)).filter((n) => n !== undefined),
          );
          const id = stringField(row, 'id');
          if (id !== undefined) candidates.push({ id, numbers });
        }
      }),
    );
    const out = new Map<string, IdHit>();
    for (const key of keys) {
      const ids = [...new Set(candidates.filter((c) => c.numbers.has(key)).map((c) => c.id))];
      out.set(key, this.pick(ids));
    }
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
    const kind = TRANSIENT_CATEGORIES.has(category) ? 'transient' : 'permanent';
    return new SyncError(kind, `${category}: ${message}`, { httpStatus: status, crmCode: category, crmResponse: asJson(body) });
  }
}

// ------------------------------------------------------------------ helpers

/** HubSpot property values are strings; null clears the property. */
export function propertyValue(value: CrmFieldValue): string {
  if (value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

/** The exact upsert input a record would produce, for dry-run. */
export function buildHubSpotUpsertInput(record: CrmRecord, idProperty: string, omitCreateOnly: boolean): { [key: string]: JsonValue } {
  const omit = new Set(omitCreateOnly ? record.createOnly : []);
  const properties: Record<string, string> = {};
  for (const [name, value] of Object.entries(record.fields)) if (!omit.has(name)) properties[name] = propertyValue(value);
  return { idProperty, id: record.externalId, objectWriteTraceId: record.externalId, properties };
}

function inlineAssociations(p: Prepared): Association[] {
  return p.associations.filter((a) => ASSOCIATION_TYPE_IDS[`${p.record.object}:${a.toObject}`] !== undefined);
}

function associationKey(object: string, id: string, association: Association): string {
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
    for (let i = 0; i < list.length; i += BATCH_LIMIT) chunks.push(list.slice(i, i + BATCH_LIMIT));
  }
  return chunks;
}

/** Greedy chunks of at most 100 values that still `fit` (HubSpot's body size limit). */
function chunkValues(values: string[], fits: (chunk: string[]) => boolean): string[][] {
  const chunks: string[][] = [];
  let current: string[] = [];
  for (const value of values) {
    const next = [...current, value];
    if (current.length > 0 && (next.length > BATCH_LIMIT || !fits(next))) {
      chunks.push(current);
      current = [value];
    } else {
      current = next;
    }
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
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
