import type { Config } from '../../config';
import type { LookupRequest } from '../../core/crm-record';
import { isE164, nationalSignificantNumber, regionOf, toE164 } from '../../core/phone';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { BatchLoader, loaderFor, lookupTtlMs, type IdHit } from '../engine/batch-loader';
import { isRecord, stringField } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import type { Pacer } from '../engine/pacer';
import type { LookupRoute, LookupRoutes } from '../engine/resolve-lookups';
import { TtlCache } from '../engine/ttl-cache';
import { SEARCH_PAGE, type HubSpotClient } from './hubspot-client';
import { hubspotError } from './hubspot-errors';
import { ASSOCIATION_KEYS, HUBSPOT_BATCH_LIMIT, HUBSPOT_OBJECT_NAME } from './hubspot-payload';

/**
 * HubSpot lookups: contacts by phone, owners by email, any object by a
 * property (an association's email, a `by: field` lookup), each through a
 * batch loader shared by every write in flight. Search mode also searches
 * the id property here (searchIds).
 */

/** HubSpot refuses search bodies past 3,000 characters. */
const SEARCH_BODY_MAX = 2_900;

export class HubSpotLookups implements LookupRoutes {
  readonly crm = 'HubSpot';
  readonly fixed;
  private readonly region;
  private readonly ttlMs: number;
  private readonly contacts: BatchLoader<IdHit>;
  private readonly owners: BatchLoader<IdHit>;
  private readonly fieldLoaders = new Map<string, BatchLoader<IdHit>>();

  constructor(
    private readonly config: Config,
    readonly logger: Logger,
    private readonly client: HubSpotClient,
    private readonly clock: Clock,
  ) {
    this.region = regionOf(config.DEFAULT_PHONE_REGION);
    this.ttlMs = config.LOOKUP_CACHE_TTL_SECONDS * 1000;
    this.contacts = this.loader(client.searchPacer, (keys, deadline) => this.searchContactsByPhone(keys, deadline));
    this.owners = this.loader(client.pacer, (keys, deadline) => this.fetchOwners(keys, deadline));
    this.fixed = [
      [this.contacts, 'contact'],
      [this.owners, 'owner'],
    ] as const;
  }

  /**
   * Lookup keys named after an association (contact, company...) find that
   * object: by phone only contacts, by email that object's `email`.
   */
  route(name: string, lookup: LookupRequest): LookupRoute | undefined {
    const toObject = ASSOCIATION_KEYS[name];
    switch (lookup.by) {
      case 'id':
        return undefined;
      case 'phone':
        return { source: this.contacts, key: lookup.value, what: 'contact', fetch: isE164(lookup.value), read: toObject === undefined || toObject === 'contacts' };
      case 'email':
        return toObject === undefined
          ? { source: this.owners, key: lookup.value.trim().toLowerCase(), what: 'owner', fetch: true, read: true }
          : { source: this.fieldLoader(`${toObject}.email`), key: lookup.value.toLowerCase(), what: 'field', fetch: true, read: true };
      case 'field': {
        const valid = HUBSPOT_OBJECT_NAME.test(lookup.object) && HUBSPOT_OBJECT_NAME.test(lookup.field);
        return { source: this.fieldLoader(`${lookup.object}.${lookup.field}`), key: lookup.value.toLowerCase(), what: 'field', fetch: valid, read: true };
      }
    }
  }

  private loader(pacer: Pacer, fetch: (keys: string[], deadline: Deadline) => Promise<Map<string, IdHit>>): BatchLoader<IdHit> {
    return new BatchLoader<IdHit>({
      crm: 'HubSpot',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: (hit) => lookupTtlMs(hit.id !== null, this.ttlMs),
      maxKeysPerFetch: 500,
      ready: (deadline) => pacer.ready(deadline),
      fetch,
      timeoutMs: this.config.CRM_TIMEOUT_MS,
    });
  }

  private fieldLoader(key: string): BatchLoader<IdHit> {
    return loaderFor(this.fieldLoaders, key, () => {
      const [object = '', field = ''] = key.split('.');
      return this.loader(this.client.searchPacer, (keys, deadline) => this.searchIds(object, field, keys, deadline, true));
    });
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
        for (const row of await this.client.searchAll('contacts', (after) => bodyFor(values, after), deadline)) {
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
  async searchIds(object: string, property: string, values: string[], deadline: Deadline, applyPolicy: boolean): Promise<Map<string, IdHit>> {
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
        for (const row of await this.client.searchAll(object, (after) => bodyFor(chunk, after), deadline)) {
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
          const response = await this.client.call('GET', `/crm/v3/owners?email=${encodeURIComponent(email)}&limit=10`, undefined, deadline);
          if (response.status !== 200) throw hubspotError(response.body, response.status);
          collect(response.body);
        }),
      );
    } else {
      let after: string | undefined;
      for (let page = 0; page < 20; page += 1) {
        const response = await this.client.call('GET', `/crm/v3/owners?limit=500${after === undefined ? '' : `&after=${encodeURIComponent(after)}`}`, undefined, deadline);
        if (response.status !== 200) throw hubspotError(response.body, response.status);
        after = collect(response.body);
        if (after === undefined) break;
      }
    }
    const out = new Map<string, IdHit>();
    for (const [email, ids] of found) out.set(email, this.pick(ids));
    return out;
  }
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

export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}
