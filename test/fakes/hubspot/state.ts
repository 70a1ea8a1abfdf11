import { randomUUID } from 'node:crypto';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { FakeCrm, json, type FakeResponse } from '../http';
import { type HubSpotRequestKind, type HsObject, type HsOwner, type FakeHubSpotOptions, type WriteError, type HubSpotValidationRule } from './shapes';

/** FakeHubSpot's state: options, seeding, inspection, error answers and record storage. */
export abstract class HubSpotState extends FakeCrm<HubSpotRequestKind> {
  baseUrl: string;
  accessToken: string;
  tenSecondLimit: number;
  dailyLimit: number;
  searchPerSecond: number | undefined;
  dailyUsed = 0;
  /** Answer a batch create with any invalid input by 400 for the whole batch, nothing written (as without multi-status). */
  rejectWholeBatch = false;
  /** Search sees a record created through the API only this long (ms, real time) after its creation. */
  searchIndexDelayMs: number;
  /** When each record created through the API becomes searchable (epoch ms), by `object:id`. */
  protected readonly indexedAt = new Map<string, number>();
  protected readonly recent: number[] = [];
  protected readonly recentSearches: number[] = [];
  protected readonly objects = new Map<string, Map<string, HsObject>>();
  /** Id by value of each unique property (`object.property` → value → id): upserts stay O(1) at volume. */
  protected readonly uniqueIndex = new Map<string, Map<string, string>>();
  protected readonly custom = new Map<string, Set<string>>();
  protected readonly unique = new Map<string, Set<string>>();
  protected readonly owners: HsOwner[] = [];
  protected readonly links = new Map<string, Set<string>>();
  protected readonly rules: Array<{ object: string; rule: HubSpotValidationRule }> = [];
  /** Errors the next write of an input (by objectWriteTraceId) answers instead of applying it. */
  protected readonly inputFaults = new Map<string, Array<{ category: string; message: string }>>();
  /** Deleted records search still returns (`object` → id → row): HubSpot's index lags deletions too. */
  protected readonly searchGhosts = new Map<string, Map<string, HsObject>>();
  protected readonly region: CountryCode;
  /** Contacts' hs_searchable_calculated_* values, computed when a contact is written (as HubSpot does). */
  protected readonly calculated = new Map<string, Record<string, string>>();
  protected seq = 1000;

  constructor(options: FakeHubSpotOptions = {}) {
    super();
    this.baseUrl = options.baseUrl ?? 'https://api.hubapi.com';
    this.accessToken = options.accessToken ?? 'pat-na1-fake-token';
    this.tenSecondLimit = options.tenSecondLimit ?? 190;
    this.dailyLimit = options.dailyLimit ?? 1_000_000;
    this.searchPerSecond = options.searchPerSecond;
    this.region = options.defaultRegion ?? 'US';
    this.searchIndexDelayMs = options.searchIndexDelayMs ?? 0;
    const custom = options.customProperties ?? { calls: ['call_sync_id'], tasks: ['call_sync_id'] };
    const unique = options.uniqueProperties ?? custom;
    for (const [object, props] of Object.entries(custom)) this.custom.set(object, new Set(props));
    for (const [object, props] of Object.entries(unique)) this.unique.set(object, new Set(props));
  }

  // ------------------------------------------------------------ seeding

  addContact(properties: Record<string, string>): string {
    return this.store('contacts', properties).id;
  }

  addCompany(properties: Record<string, string>): string {
    return this.store('companies', properties).id;
  }

  addOwner(owner: { email: string; firstName?: string; lastName?: string; archived?: boolean }): string {
    this.seq += 1;
    const now = new Date().toISOString();
    const id = String(this.seq);
    this.owners.push({
      id,
      email: owner.email,
      firstName: owner.firstName ?? 'Agent',
      lastName: owner.lastName ?? String(this.seq),
      userId: 9_000_000 + this.seq,
      createdAt: now,
      updatedAt: now,
      archived: owner.archived ?? false,
    });
    return id;
  }

  /** A custom property, created (or changed) as in Settings → Properties; `unique` ticks "Require unique values". */
  defineProperty(object: string, name: string, options: { unique?: boolean } = {}): void {
    const custom = this.custom.get(object) ?? new Set<string>();
    custom.add(name);
    this.custom.set(object, custom);
    const unique = this.unique.get(object) ?? new Set<string>();
    if (options.unique === true) unique.add(name);
    else unique.delete(name);
    this.unique.set(object, unique);
    if (options.unique === true) for (const row of this.table(object).values()) this.index(object, row);
  }

  /**
   * Deletes a contact (merged away, removed): associations to it are refused
   * from now on. `stillSearchable`: search keeps returning it, as HubSpot's
   * index may for a while after a deletion.
   */
  removeContact(id: string, options: { stillSearchable?: boolean } = {}): void {
    const row = this.table('contacts').get(id);
    this.table('contacts').delete(id);
    if (row === undefined || options.stillSearchable !== true) return;
    const ghosts = this.searchGhosts.get('contacts') ?? new Map<string, HsObject>();
    ghosts.set(id, row);
    this.searchGhosts.set('contacts', ghosts);
  }

  /**
   * The next batch write carrying the input traced `trace` fails that input
   * with this error, nothing of it applied: `batch/create` answers 207 with
   * it in `errors` (the other inputs applied), upsert and update refuse the
   * whole batch. E.g. `{ category: 'INTERNAL_ERROR', message: '...' }`, a
   * failure of one input HubSpot reports now and then.
   */
  failInputNext(trace: string, error: { category: string; message: string }): void {
    const queued = this.inputFaults.get(trace) ?? [];
    queued.push(error);
    this.inputFaults.set(trace, queued);
  }

  /** Deactivates an owner (the user left): HubSpot no longer accepts its id as hubspot_owner_id. */
  archiveOwner(id: string): void {
    const owner = this.owners.find((o) => o.id === id);
    if (owner !== undefined) owner.archived = true;
  }

  /** A validation rule on `object`: answer a message to reject the input (VALIDATION_ERROR). */
  addValidationRule(object: string, rule: HubSpotValidationRule): void {
    this.rules.push({ object, rule });
  }

  // ---------------------------------------------------------- inspection

  records(object: string): HsObject[] {
    return [...this.table(object).values()].map((o) => ({ ...o, properties: { ...o.properties } }));
  }

  find(object: string, property: string, value: string): HsObject[] {
    return this.records(object).filter((o) => o.properties[property] === value);
  }

  /** Ids of `toObject` records associated with this record. */
  associationsOf(object: string, id: string, toObject: string): string[] {
    return [...(this.links.get(`${object}:${id}`) ?? [])]
      .filter((key) => key.startsWith(`${toObject}:`))
      .map((key) => key.slice(toObject.length + 1));
  }

  summary(): Record<string, unknown> {
    return {
      objects: Object.fromEntries([...this.objects].map(([name, rows]) => [name, rows.size])),
      owners: this.owners.length,
      dailyUsed: this.dailyUsed,
    };
  }

  protected rateHeaders(now: number): Record<string, string> {
    const inWindow = this.recent.filter((t) => t > now - 10_000).length;
    return {
      'X-HubSpot-RateLimit-Daily': String(this.dailyLimit),
      'X-HubSpot-RateLimit-Daily-Remaining': String(Math.max(0, this.dailyLimit - this.dailyUsed)),
      'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
      'X-HubSpot-RateLimit-Max': String(this.tenSecondLimit),
      'X-HubSpot-RateLimit-Remaining': String(Math.max(0, this.tenSecondLimit - inWindow)),
      'X-HubSpot-RateLimit-Secondly': String(Math.ceil(this.tenSecondLimit / 10)),
      'X-HubSpot-RateLimit-Secondly-Remaining': String(Math.max(0, Math.ceil(this.tenSecondLimit / 10) - this.recent.filter((t) => t > now - 1000).length)),
    };
  }

  protected unauthorized(): FakeResponse {
    return json(401, {
      status: 'error',
      message: 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      correlationId: randomUUID(),
      category: 'INVALID_AUTHENTICATION',
    });
  }

  protected notFound(message: string): FakeResponse {
    return json(404, { status: 'error', message, correlationId: randomUUID(), category: 'OBJECT_NOT_FOUND' });
  }

  protected badRequest(message: string, errors?: WriteError['errors']): FakeResponse {
    return json(400, { status: 'error', message, correlationId: randomUUID(), category: 'VALIDATION_ERROR', ...(errors === undefined ? {} : { errors }) });
  }

  // ------------------------------------------------------------ helpers

  protected table(object: string): Map<string, HsObject> {
    let table = this.objects.get(object);
    if (table === undefined) {
      table = new Map();
      this.objects.set(object, table);
    }
    return table;
  }

  /** What a record about to be created looks like (its id is final once stored). */
  protected preview(): HsObject {
    const now = new Date().toISOString();
    return { id: String(this.seq + 1), properties: { hs_createdate: now, hs_lastmodifieddate: now }, createdAt: now, updatedAt: now, archived: false };
  }

  /** `viaApi`: created by a client write, so search finds it only searchIndexDelayMs later (seeded records at once). */
  protected store(object: string, properties: Record<string, string>, viaApi = false): HsObject {
    this.seq += 1;
    const id = String(this.seq);
    const now = new Date().toISOString();
    const row: HsObject = { id, properties: { ...properties, hs_object_id: id, hs_createdate: now, hs_lastmodifieddate: now }, createdAt: now, updatedAt: now, archived: false };
    this.table(object).set(id, row);
    if (viaApi && this.searchIndexDelayMs > 0) this.indexedAt.set(`${object}:${id}`, Date.now() + this.searchIndexDelayMs);
    this.index(object, row);
    return row;
  }

  protected patch(object: string, existing: HsObject, properties: Record<string, string>): HsObject {
    const now = new Date().toISOString();
    for (const name of this.unique.get(object) ?? []) {
      const previous = existing.properties[name];
      if (previous !== undefined && properties[name] !== undefined && properties[name] !== previous) {
        this.uniqueIndex.get(`${object}.${name}`)?.delete(previous);
      }
    }
    Object.assign(existing.properties, properties, { hs_lastmodifieddate: now });
    existing.updatedAt = now;
    this.index(object, existing);
    return existing;
  }

  protected index(object: string, row: HsObject): void {
    if (object === 'contacts') {
      this.calculated.set(row.id, {
        hs_searchable_calculated_phone_number: this.searchableNumber(row.properties['phone']),
        hs_searchable_calculated_mobile_number: this.searchableNumber(row.properties['mobilephone']),
      });
    }
    for (const name of this.unique.get(object) ?? []) {
      const value = row.properties[name];
      if (value === undefined || value === '') continue;
      const key = `${object}.${name}`;
      const values = this.uniqueIndex.get(key) ?? new Map<string, string>();
      values.set(value, row.id);
      this.uniqueIndex.set(key, values);
    }
  }

  /** A record's properties as search sees them, with contacts' calculated phone properties. */
  protected searchable(object: string, row: HsObject): Record<string, string> {
    if (object !== 'contacts') return row.properties;
    return { ...row.properties, ...(this.calculated.get(row.id) ?? {}) };
  }

  /** HubSpot's calculated search number: the national number, without country code or formatting. */
  protected searchableNumber(raw: string | undefined): string {
    if (raw === undefined || raw.trim() === '') return '';
    const parsed = parsePhoneNumberFromString(raw, this.region);
    return parsed?.nationalNumber ?? raw.replace(/\D/g, '').replace(/^0+/, '');
  }

  protected link(from: string, fromId: string, to: string, toId: string): void {
    const forward = this.links.get(`${from}:${fromId}`) ?? new Set<string>();
    forward.add(`${to}:${toId}`);
    this.links.set(`${from}:${fromId}`, forward);
    const back = this.links.get(`${to}:${toId}`) ?? new Set<string>();
    back.add(`${from}:${fromId}`);
    this.links.set(`${to}:${toId}`, back);
  }
}
