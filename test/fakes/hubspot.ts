import { randomUUID } from 'node:crypto';
import { parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';
import { FakeCrm, json, type Fault, type FakeRequest, type FakeResponse } from './http';

/**
 * A stateful fake of HubSpot's CRM v3/v4 APIs (private-app token auth),
 * answering with the real shapes:
 *  - POST /crm/v3/objects/{type}/batch/create: 201; with some inputs failing
 *    and every input traced by objectWriteTraceId, 207 with `errors` (each
 *    carrying context.objectWriteTraceId): HubSpot documents multi-status for
 *    batch create only;
 *  - POST /crm/v3/objects/{type}/batch/upsert|update: 200; any input failing
 *    fails the whole batch, nothing written: 400 VALIDATION_ERROR (the
 *    validation results embedded in the message, as HubSpot writes them),
 *    409 CONFLICT quoting a unique value that exists already, or 404
 *    OBJECT_NOT_FOUND listing the missing ids in context.ids (a create
 *    refused whole, `rejectWholeBatch`, answers alike); an
 *    idProperty without unique values is refused with HubSpot's
 *    "Unable to perform update/upsert by non-unique ..." message;
 *  - POST /crm/v3/objects/{type}/batch/read: 200;
 *  - GET /crm/v3/properties/{type}/{name}: the property definition
 *    (hasUniqueValue...), 404 when the portal has no such property;
 *  - POST /crm/v3/objects/{type}/search: filterGroups (OR) of filters (AND),
 *    EQ/NEQ/IN/NOT_IN/HAS_PROPERTY/NOT_HAS_PROPERTY, 200 a page, `after`
 *    paging, the documented limits (5 groups, 6 filters a group, 18 in all,
 *    3,000 characters); contacts carry the computed
 *    hs_searchable_calculated_phone_number / _mobile_number; a record created
 *    through the API is found only `searchIndexDelayMs` later, as HubSpot's
 *    search index lags writes by seconds;
 *  - GET /crm/v3/owners?email=&limit=&after=;
 *  - POST /crm/v4/associations/{from}/{to}/batch/associate/default and
 *    GET /crm/v4/objects/{type}/{id}/associations/{toType};
 *  - errors with status/message/correlationId/category (and policyName on 429);
 *  - X-HubSpot-RateLimit-* headers on every non-search answer, with the
 *    10-second and daily limits enforced (429 TEN_SECONDLY_ROLLING / DAILY).
 */

export type HubSpotRequestKind =
  | 'upsert'
  | 'create'
  | 'update'
  | 'read'
  | 'search'
  | 'owners'
  | 'associate'
  | 'associations'
  | 'get'
  | 'property'
  | 'other';

export interface HsObject {
  id: string;
  properties: Record<string, string>;
  createdAt: string;
  updatedAt: string;
  archived: false;
}

export interface HsOwner {
  id: string;
  email: string;
  firstName: string;
  lastName: string;
  userId: number;
  createdAt: string;
  updatedAt: string;
  archived: boolean;
}

const STANDARD_PROPERTIES: Record<string, readonly string[]> = {
  calls: [
    'hs_timestamp',
    'hs_call_title',
    'hs_call_body',
    'hs_call_direction',
    'hs_call_disposition',
    'hs_call_duration',
    'hs_call_from_number',
    'hs_call_to_number',
    'hs_call_recording_url',
    'hs_call_status',
    'hs_call_external_id',
    'hs_call_source',
    'hubspot_owner_id',
  ],
  tasks: ['hs_timestamp', 'hs_task_subject', 'hs_task_body', 'hs_task_status', 'hs_task_priority', 'hs_task_type', 'hubspot_owner_id'],
  contacts: ['firstname', 'lastname', 'email', 'phone', 'mobilephone', 'company', 'hubspot_owner_id'],
  companies: ['name', 'domain', 'phone'],
  deals: ['dealname', 'amount'],
};

const ENUMS: Record<string, Record<string, readonly string[]>> = {
  calls: {
    hs_call_direction: ['INBOUND', 'OUTBOUND'],
    hs_call_status: ['BUSY', 'CALLING_CRM_USER', 'CANCELED', 'COMPLETED', 'CONNECTING', 'FAILED', 'IN_PROGRESS', 'NO_ANSWER', 'QUEUED', 'RINGING'],
  },
  tasks: {
    hs_task_status: ['NOT_STARTED', 'IN_PROGRESS', 'WAITING', 'COMPLETED', 'DEFERRED'],
    hs_task_priority: ['NONE', 'LOW', 'MEDIUM', 'HIGH'],
    hs_task_type: ['CALL', 'EMAIL', 'TODO', 'LINKED_IN'],
  },
};

/** Default association type ids (HUBSPOT_DEFINED), from → to. */
const ASSOCIATION_TYPE: Record<string, number> = {
  'calls:contacts': 194,
  'tasks:contacts': 204,
  'calls:companies': 182,
  'tasks:companies': 192,
  'calls:deals': 206,
  'tasks:deals': 216,
};

const TYPE_IDS: Record<string, string> = { '0-1': 'contacts', '0-2': 'companies', '0-3': 'deals', '0-27': 'tasks', '0-48': 'calls' };
const TYPE_ID_OF: Record<string, string> = Object.fromEntries(Object.entries(TYPE_IDS).map(([id, name]) => [name, id]));
const PORTAL_ID = 4_000_001;

/** Objects whose writes require hs_timestamp on create. */
const TIMESTAMPED = new Set(['calls', 'tasks']);

export interface FakeHubSpotOptions {
  baseUrl?: string;
  accessToken?: string;
  /** Custom properties per object; created with "unique values" when listed in `uniqueProperties`. */
  customProperties?: Record<string, string[]>;
  uniqueProperties?: Record<string, string[]>;
  /** Burst limit: requests per 10 s (X-HubSpot-RateLimit-Max). */
  tenSecondLimit?: number;
  dailyLimit?: number;
  /** Searches per second; unset = not enforced (the real API allows about 5). */
  searchPerSecond?: number;
  /** Region used to compute hs_searchable_calculated_* for numbers without a country code. */
  defaultRegion?: CountryCode;
  /** How long after an API write a new record becomes visible to search (real time). */
  searchIndexDelayMs?: number;
}

interface WriteError {
  status: 'error';
  category: string;
  message: string;
  context: Record<string, string[]>;
  errors?: Array<{ message: string; code: string; context?: Record<string, string[]> }>;
}

export type HubSpotValidationRule = (properties: Record<string, string>, object: string) => string | undefined;

export class FakeHubSpot extends FakeCrm<HubSpotRequestKind> {
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
  private readonly indexedAt = new Map<string, number>();
  private readonly recent: number[] = [];
  private readonly recentSearches: number[] = [];
  private readonly objects = new Map<string, Map<string, HsObject>>();
  /** Id by value of each unique property (`object.property` → value → id): upserts stay O(1) at volume. */
  private readonly uniqueIndex = new Map<string, Map<string, string>>();
  private readonly custom = new Map<string, Set<string>>();
  private readonly unique = new Map<string, Set<string>>();
  private readonly owners: HsOwner[] = [];
  private readonly links = new Map<string, Set<string>>();
  private readonly rules: Array<{ object: string; rule: HubSpotValidationRule }> = [];
  /** Errors the next write of an input (by objectWriteTraceId) answers instead of applying it. */
  private readonly inputFaults = new Map<string, Array<{ category: string; message: string }>>();
  /** Deleted records search still returns (`object` → id → row): HubSpot's index lags deletions too. */
  private readonly searchGhosts = new Map<string, Map<string, HsObject>>();
  private readonly region: CountryCode;
  /** Contacts' hs_searchable_calculated_* values, computed when a contact is written (as HubSpot does). */
  private readonly calculated = new Map<string, Record<string, string>>();
  private seq = 1000;

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

  // ------------------------------------------------------------ plumbing

  protected origins(): string[] {
    return [this.baseUrl];
  }

  protected useBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  protected kindOf(req: FakeRequest): HubSpotRequestKind {
    const path = req.url.pathname.replace(/\/+$/, '');
    const batch = /^\/crm\/v3\/objects\/[\w-]+\/batch\/(upsert|create|update|read)$/.exec(path);
    if (batch !== null && req.method === 'POST') return batch[1] as HubSpotRequestKind;
    if (/^\/crm\/v3\/objects\/[\w-]+\/search$/.test(path) && req.method === 'POST') return 'search';
    if (path === '/crm/v3/owners' && req.method === 'GET') return 'owners';
    if (/^\/crm\/v4\/associations\/[\w-]+\/[\w-]+\/batch\/associate\/default$/.test(path) && req.method === 'POST') return 'associate';
    if (/^\/crm\/v4\/objects\/[\w-]+\/\d+\/associations\/[\w-]+$/.test(path) && req.method === 'GET') return 'associations';
    if (/^\/crm\/v3\/objects\/[\w-]+\/[^/]+$/.test(path) && req.method === 'GET') return 'get';
    if (/^\/crm\/v3\/properties\/[\w-]+\/[^/]+$/.test(path) && req.method === 'GET') return 'property';
    return 'other';
  }

  protected faultResponse(fault: Fault): FakeResponse {
    switch (fault.type) {
      case 'auth':
        return this.unauthorized();
      case 'quota':
        return json(429, {
          status: 'error',
          message: 'You have reached your daily limit.',
          errorType: 'RATE_LIMIT',
          correlationId: randomUUID(),
          policyName: 'DAILY',
          groupName: 'api-calls-daily',
        }, this.rateHeaders(Date.now()));
      case 'rate-limit':
        return json(
          429,
          {
            status: 'error',
            message: 'You have reached your ten_secondly_rolling limit.',
            errorType: 'RATE_LIMIT',
            correlationId: randomUUID(),
            policyName: 'TEN_SECONDLY_ROLLING',
            groupName: 'api-calls',
          },
          fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) },
        );
      default:
        return json(503, { status: 'error', message: 'Service Unavailable', correlationId: randomUUID(), category: 'SERVICE_UNAVAILABLE' });
    }
  }

  protected route(req: FakeRequest, kind: HubSpotRequestKind): FakeResponse {
    if ((req.headers['authorization'] ?? '') !== `Bearer ${this.accessToken}`) return this.unauthorized();
    const now = Date.now();
    if (kind === 'search') {
      // Search has its own per-second limit and sends no rate-limit headers.
      if (this.searchPerSecond !== undefined) {
        while (this.recentSearches.length > 0 && (this.recentSearches[0] ?? 0) <= now - 1000) this.recentSearches.shift();
        if (this.recentSearches.length >= this.searchPerSecond) {
          return json(429, { status: 'error', message: 'You have reached your secondly limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'SECONDLY' });
        }
        this.recentSearches.push(now);
      }
      return this.search(req);
    }
    while (this.recent.length > 0 && (this.recent[0] ?? 0) <= now - 10_000) this.recent.shift();
    if (this.dailyUsed >= this.dailyLimit) {
      return json(429, { status: 'error', message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'DAILY', groupName: 'api-calls-daily' }, this.rateHeaders(now));
    }
    if (this.recent.length >= this.tenSecondLimit) {
      return json(429, { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'TEN_SECONDLY_ROLLING', groupName: 'api-calls' }, this.rateHeaders(now));
    }
    this.recent.push(now);
    this.dailyUsed += 1;
    const response = this.routeApi(req, kind);
    return { ...response, headers: { ...this.rateHeaders(now), ...(response.headers ?? {}) } };
  }

  private routeApi(req: FakeRequest, kind: HubSpotRequestKind): FakeResponse {
    const parts = req.url.pathname.replace(/\/+$/, '').split('/').filter((p) => p !== '');
    const body = parseBody(req.body);
    switch (kind) {
      case 'upsert':
        return this.batchUpsert(objectName(parts[3]), body);
      case 'create':
        return this.batchCreate(objectName(parts[3]), body);
      case 'update':
        return this.batchUpdate(objectName(parts[3]), body);
      case 'read':
        return this.batchRead(objectName(parts[3]), body);
      case 'owners':
        return this.listOwners(req.url.searchParams);
      case 'associate':
        return this.associate(objectName(parts[3]), objectName(parts[4]), body);
      case 'associations': {
        const from = objectName(parts[3]);
        const to = objectName(parts[6]);
        const ids = this.associationsOf(from, parts[4] ?? '', to);
        const typeId = ASSOCIATION_TYPE[`${from}:${to}`] ?? 1;
        return json(200, {
          results: ids.map((id) => ({ toObjectId: Number(id), associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId, label: null }] })),
        });
      }
      case 'property':
        return this.property(objectName(parts[3]), decodeURIComponent(parts[4] ?? ''));
      case 'get': {
        const object = objectName(parts[3]);
        const idProperty = req.url.searchParams.get('idProperty');
        const key = decodeURIComponent(parts[4] ?? '');
        const found = idProperty === null ? this.table(object).get(key) : [...this.table(object).values()].find((o) => o.properties[idProperty] === key);
        if (found === undefined) return this.notFound(`Object not found.  objectId are usually numeric.`);
        return json(200, found);
      }
      default:
        return json(404, { status: 'error', message: 'Unable to route request', correlationId: randomUUID(), category: 'OBJECT_NOT_FOUND' });
    }
  }

  private rateHeaders(now: number): Record<string, string> {
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

  private unauthorized(): FakeResponse {
    return json(401, {
      status: 'error',
      message: 'Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview',
      correlationId: randomUUID(),
      category: 'INVALID_AUTHENTICATION',
    });
  }

  private notFound(message: string): FakeResponse {
    return json(404, { status: 'error', message, correlationId: randomUUID(), category: 'OBJECT_NOT_FOUND' });
  }

  private badRequest(message: string, errors?: WriteError['errors']): FakeResponse {
    return json(400, { status: 'error', message, correlationId: randomUUID(), category: 'VALIDATION_ERROR', ...(errors === undefined ? {} : { errors }) });
  }

  // ------------------------------------------------------------- writes

  private inputsOf(body: unknown): Array<Record<string, unknown>> | FakeResponse {
    if (!isObject(body) || !Array.isArray(body['inputs'])) return this.badRequest('Invalid input JSON on line 1, column 1: Cannot build BatchInput, some of required attributes are not set [inputs]');
    const inputs: unknown[] = body['inputs'];
    if (inputs.length > 100) return this.badRequest(`Batch size of ${inputs.length} exceeds maximum of 100`);
    if (!inputs.every(isObject)) return this.badRequest('Invalid input JSON');
    return inputs as Array<Record<string, unknown>>;
  }

  /**
   * Runs every input, then answers: all good 200 (201 for create). Some bad:
   * a create whose inputs are all traced answers 207 with the failures in
   * `errors` and the others applied (multi-status, which HubSpot documents
   * for batch create only); anything else fails the whole batch, nothing
   * applied: 404 listing the ids that do not exist, else 400 with the first
   * validation error.
   */
  private finishBatch(
    inputs: Array<Record<string, unknown>>,
    attempt: (input: Record<string, unknown>, trace: string | undefined) => { result?: Record<string, unknown>; error?: WriteError; apply?: () => void },
    okStatus: number,
    multiStatus: boolean,
  ): FakeResponse {
    const traced = inputs.every((i) => typeof i['objectWriteTraceId'] === 'string');
    const outcomes = inputs.map((input) => {
      const trace = typeof input['objectWriteTraceId'] === 'string' ? input['objectWriteTraceId'] : undefined;
      const injected = trace === undefined ? undefined : this.inputFaults.get(trace)?.shift();
      if (injected === undefined || trace === undefined) return attempt(input, trace);
      if (this.inputFaults.get(trace)?.length === 0) this.inputFaults.delete(trace);
      const error: WriteError = { status: 'error', category: injected.category, message: injected.message, context: { objectWriteTraceId: [trace] } };
      return { error };
    });
    const errors = outcomes.flatMap((o) => (o.error === undefined ? [] : [o.error]));
    if (errors.length > 0 && (!multiStatus || !traced || this.rejectWholeBatch)) {
      const missing = errors.filter((e) => e.category === 'OBJECT_NOT_FOUND');
      const first = missing[0];
      if (first !== undefined) {
        const ids = missing.flatMap((e) => e.context['ids'] ?? []);
        return json(404, { status: 'error', message: first.message, correlationId: randomUUID(), context: { ids }, category: 'OBJECT_NOT_FOUND' });
      }
      const firstError = errors[0];
      // A second record with a unique value is a 409 CONFLICT, as a single create answers it.
      if (firstError?.category === 'CONFLICT') return json(409, { status: 'error', message: firstError.message, correlationId: randomUUID(), category: 'CONFLICT' });
      return this.badRequest(firstError?.message ?? 'invalid input', firstError?.errors);
    }
    for (const o of outcomes) o.apply?.();
    const startedAt = new Date().toISOString();
    const results = outcomes.flatMap((o) => (o.result === undefined ? [] : [o.result]));
    if (errors.length > 0) {
      return json(207, { status: 'COMPLETE', results, numErrors: errors.length, errors, startedAt, completedAt: new Date().toISOString() });
    }
    return json(okStatus, { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() });
  }

  private batchUpsert(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const idProperties = new Set(inputs.map((i) => i['idProperty']));
    for (const idProperty of idProperties) {
      if (typeof idProperty !== 'string') return this.badRequest('idProperty is required');
      if (!(this.unique.get(object)?.has(idProperty) ?? false)) {
        return this.badRequest(`Unable to perform update/upsert by non-unique ${TYPE_ID_OF[object] ?? object} property ${idProperty} in portal ID ${PORTAL_ID}`);
      }
    }
    const ids = inputs.map((i) => String(i['id']));
    const duplicate = ids.find((id, index) => ids.indexOf(id) !== index);
    if (duplicate !== undefined) return this.badRequest(`Duplicate IDs found in batch input: [${duplicate}]. IDs must be unique`);
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const idProperty = String(input['idProperty']);
        const id = String(input['id']);
        const existingId = this.uniqueIndex.get(`${object}.${idProperty}`)?.get(id);
        const existing = existingId === undefined ? undefined : this.table(object).get(existingId);
        const properties = { ...stringProps(input['properties']), [idProperty]: id };
        const error = this.validate(object, properties, existing, trace);
        if (error !== undefined) return { error };
        const preview = existing ?? this.preview();
        const merged = { ...preview.properties, ...properties };
        let stored: HsObject | undefined;
        return {
          result: {
            get id() {
              return stored?.id ?? preview.id;
            },
            properties: merged,
            createdAt: preview.createdAt,
            updatedAt: new Date().toISOString(),
            archived: false,
            new: existing === undefined,
            ...(trace === undefined ? {} : { objectWriteTraceId: trace }),
          },
          apply: () => {
            stored = existing === undefined ? this.store(object, properties, true) : this.patch(object, existing, properties);
          },
        };
      },
      200,
      false,
    );
  }

  private batchCreate(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const properties = stringProps(input['properties']);
        const error = this.validate(object, properties, undefined, trace);
        if (error !== undefined) return { error };
        const links: Array<{ toObject: string; toId: string }> = [];
        for (const association of Array.isArray(input['associations']) ? input['associations'] : []) {
          const toId = isObject(association) && isObject(association['to']) ? String(association['to']['id']) : '';
          const typeId = isObject(association) && Array.isArray(association['types']) && isObject(association['types'][0]) ? Number(association['types'][0]['associationTypeId']) : NaN;
          const toObject = Object.entries(ASSOCIATION_TYPE).find(([key, id]) => id === typeId && key.startsWith(`${object}:`))?.[0].split(':')[1];
          if (toObject === undefined || !this.table(toObject).has(toId)) {
            return { error: { status: 'error', category: 'VALIDATION_ERROR', message: `Invalid association: no ${toObject ?? 'object'} with id ${toId} (type ${typeId})`, context: trace === undefined ? {} : { objectWriteTraceId: [trace] } } };
          }
          links.push({ toObject, toId });
        }
        const preview = this.preview();
        let stored: HsObject | undefined;
        return {
          result: {
            get id() {
              return stored?.id ?? preview.id;
            },
            properties: { ...preview.properties, ...properties },
            createdAt: preview.createdAt,
            updatedAt: preview.updatedAt,
            archived: false,
            ...(trace === undefined ? {} : { objectWriteTraceId: trace }),
          },
          apply: () => {
            stored = this.store(object, properties, true);
            for (const link of links) this.link(object, stored.id, link.toObject, link.toId);
          },
        };
      },
      201,
      true,
    );
  }

  private batchUpdate(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    return this.finishBatch(
      inputs,
      (input, trace) => {
        const id = String(input['id']);
        const existing = this.table(object).get(id);
        const context = trace === undefined ? { ids: [id] } : { objectWriteTraceId: [trace], ids: [id] };
        if (existing === undefined) return { error: { status: 'error', category: 'OBJECT_NOT_FOUND', message: `Could not get some ${object} objects, they may be deleted or not exist. Check that ids are valid.`, context } };
        const properties = stringProps(input['properties']);
        const error = this.validate(object, properties, existing, trace);
        if (error !== undefined) return { error };
        return {
          result: { id, properties: { ...existing.properties, ...properties }, createdAt: existing.createdAt, updatedAt: new Date().toISOString(), archived: false, ...(trace === undefined ? {} : { objectWriteTraceId: trace }) },
          apply: () => this.patch(object, existing, properties),
        };
      },
      200,
      false,
    );
  }

  private batchRead(object: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const idProperty = isObject(body) && typeof body['idProperty'] === 'string' ? body['idProperty'] : undefined;
    const results = inputs.flatMap((input) => {
      const key = String(input['id']);
      const found = idProperty === undefined ? this.table(object).get(key) : [...this.table(object).values()].find((o) => o.properties[idProperty] === key);
      return found === undefined ? [] : [found];
    });
    return json(200, { status: 'COMPLETE', results, startedAt: new Date().toISOString(), completedAt: new Date().toISOString() });
  }

  private validate(object: string, properties: Record<string, string>, existing: HsObject | undefined, trace: string | undefined): WriteError | undefined {
    const context: Record<string, string[]> = trace === undefined ? {} : { objectWriteTraceId: [trace] };
    const invalid = (error: string, name: string, message: string): WriteError => ({
      status: 'error',
      category: 'VALIDATION_ERROR',
      message: `Property values were not valid: [${JSON.stringify({ isValid: false, message, error, name, localizedErrorMessage: message })}]`,
      context,
      errors: [{ message, code: error, context: { propertyName: [name] } }],
    });
    const known = new Set([...(STANDARD_PROPERTIES[object] ?? []), ...(this.custom.get(object) ?? [])]);
    for (const [name, value] of Object.entries(properties)) {
      if (!known.has(name)) return invalid('PROPERTY_DOESNT_EXIST', name, `Property "${name}" does not exist`);
      const options = ENUMS[object]?.[name];
      if (options !== undefined && value !== '' && !options.includes(value)) {
        return invalid('INVALID_OPTION', name, `${value} was not one of the allowed options: ${options.map((o) => `label: "${o}"\nvalue: "${o}"`).join(', ')}`);
      }
      if (name === 'hubspot_owner_id' && value !== '' && !this.owners.some((o) => o.id === value && !o.archived)) {
        return invalid('INVALID_OWNER_ID', name, `${value} is not a valid owner id`);
      }
    }
    for (const name of this.unique.get(object) ?? []) {
      const value = properties[name];
      if (value === undefined || value === '') continue;
      const clashId = this.uniqueIndex.get(`${object}.${name}`)?.get(value);
      const clash = clashId === undefined || clashId === existing?.id ? undefined : this.table(object).get(clashId);
      if (clash !== undefined) {
        return { status: 'error', category: 'CONFLICT', message: `A ${object} with ${name}=${value} already exists. Existing ID: ${clash.id}`, context: { ...context, existingId: [clash.id] } };
      }
    }
    if (existing === undefined && TIMESTAMPED.has(object) && (properties['hs_timestamp'] ?? '') === '') {
      return invalid('REQUIRED_PROPERTY', 'hs_timestamp', 'hs_timestamp is required');
    }
    for (const { object: ruleObject, rule } of this.rules) {
      if (ruleObject !== object) continue;
      const message = rule({ ...(existing?.properties ?? {}), ...properties }, object);
      if (message !== undefined) return { status: 'error', category: 'VALIDATION_ERROR', message, context };
    }
    return undefined;
  }

  // ------------------------------------------------------------- search

  private search(req: FakeRequest): FakeResponse {
    const object = objectName(req.url.pathname.split('/').filter((p) => p !== '')[3]);
    if (req.body.length > 3000) return this.badRequest(`Search request body is too long: ${req.body.length} characters, 3000 allowed`);
    const body = parseBody(req.body);
    if (!isObject(body)) return this.badRequest('Invalid input JSON');
    const groups = Array.isArray(body['filterGroups']) ? body['filterGroups'] : [];
    const filterCount = groups.reduce<number>((n, g) => n + (isObject(g) && Array.isArray(g['filters']) ? g['filters'].length : 0), 0);
    if (groups.length > 5) return this.badRequest(`Too many filter groups (${groups.length}); the maximum is 5`);
    if (filterCount > 18 || groups.some((g) => isObject(g) && Array.isArray(g['filters']) && g['filters'].length > 6)) {
      return this.badRequest('Too many filters: at most 6 in a group and 18 in all');
    }
    const limit = Math.min(200, typeof body['limit'] === 'number' ? body['limit'] : 10);
    const offset = typeof body['after'] === 'string' ? Number(body['after']) : 0;
    const wanted = Array.isArray(body['properties']) ? body['properties'].filter((p): p is string => typeof p === 'string') : [];
    const now = Date.now();
    const matches = [...this.table(object).values(), ...(this.searchGhosts.get(object)?.values() ?? [])]
      .filter((row) => {
        if ((this.indexedAt.get(`${object}:${row.id}`) ?? 0) > now) return false;
        if (groups.length === 0) return true;
        return groups.some((group) =>
          isObject(group) && Array.isArray(group['filters']) && group['filters'].every((filter) => isObject(filter) && matchFilter(this.searchable(object, row), filter)),
        );
      })
      .sort((a, b) => compareIds(a.id, b.id));
    const page = matches.slice(offset, offset + limit).map((row) => {
      const all = this.searchable(object, row);
      const properties: Record<string, string | null> = {
        hs_object_id: row.id,
        createdate: row.createdAt,
        lastmodifieddate: row.updatedAt,
      };
      for (const name of wanted) properties[name] = all[name] ?? null;
      return { id: row.id, properties, createdAt: row.createdAt, updatedAt: row.updatedAt, archived: false };
    });
    const next = offset + limit < matches.length ? { paging: { next: { after: String(offset + limit) } } } : {};
    return json(200, { total: matches.length, results: page, ...next });
  }

  /** A record's properties as search sees them, with contacts' calculated phone properties. */
  private searchable(object: string, row: HsObject): Record<string, string> {
    if (object !== 'contacts') return row.properties;
    return { ...row.properties, ...(this.calculated.get(row.id) ?? {}) };
  }

  /** HubSpot's calculated search number: the national number, without country code or formatting. */
  private searchableNumber(raw: string | undefined): string {
    if (raw === undefined || raw.trim() === '') return '';
    const parsed = parsePhoneNumberFromString(raw, this.region);
    return parsed?.nationalNumber ?? raw.replace(/\D/g, '').replace(/^0+/, '');
  }

  // --------------------------------------------------------- properties

  /** GET /crm/v3/properties/{object}/{name}, in the shape HubSpot answers. */
  private property(object: string, name: string): FakeResponse {
    const custom = this.custom.get(object)?.has(name) ?? false;
    const standard = (STANDARD_PROPERTIES[object] ?? []).includes(name);
    if (!custom && !standard) return this.notFound(`Unable to find property ${name} for object type ${TYPE_ID_OF[object] ?? object}`);
    const options = ENUMS[object]?.[name];
    return json(200, {
      updatedAt: '2024-06-03T10:00:00.000Z',
      createdAt: '2024-06-03T10:00:00.000Z',
      name,
      label: name.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase()),
      type: options === undefined ? 'string' : 'enumeration',
      fieldType: options === undefined ? 'text' : 'select',
      description: '',
      groupName: custom ? `${object.replace(/s$/, '')}information` : 'engagement',
      options: (options ?? []).map((value, displayOrder) => ({ label: value, value, displayOrder, hidden: false })),
      displayOrder: -1,
      calculated: false,
      externalOptions: false,
      hasUniqueValue: this.unique.get(object)?.has(name) ?? false,
      hidden: false,
      hubspotDefined: standard,
      modificationMetadata: { archivable: custom, readOnlyDefinition: standard, readOnlyValue: false },
      formField: false,
      dataSensitivity: 'non_sensitive',
    });
  }

  // ------------------------------------------------------------- owners

  private listOwners(params: URLSearchParams): FakeResponse {
    const email = params.get('email');
    const limit = Math.min(500, Number(params.get('limit') ?? '100') || 100);
    const offset = Number(params.get('after') ?? '0') || 0;
    const archived = params.get('archived') === 'true';
    const matches = this.owners.filter((o) => o.archived === archived && (email === null || o.email.toLowerCase() === email.toLowerCase()));
    const page = matches.slice(offset, offset + limit).map((o) => ({ ...o, teams: [] }));
    const next = offset + limit < matches.length ? { paging: { next: { after: String(offset + limit), link: '' } } } : {};
    return json(200, { results: page, ...next });
  }

  // -------------------------------------------------------- associations

  private associate(from: string, to: string, body: unknown): FakeResponse {
    const inputs = this.inputsOf(body);
    if (!Array.isArray(inputs)) return inputs;
    const typeId = ASSOCIATION_TYPE[`${from}:${to}`] ?? 1;
    const results: unknown[] = [];
    const errors: WriteError[] = [];
    for (const input of inputs) {
      const fromId = isObject(input['from']) ? String(input['from']['id']) : '';
      const toId = isObject(input['to']) ? String(input['to']['id']) : '';
      if (!this.table(from).has(fromId) || !this.table(to).has(toId)) {
        const missing = this.table(from).has(fromId) ? `${to} ${toId}` : `${from} ${fromId}`;
        errors.push({ status: 'error', category: 'VALIDATION_ERROR', message: `No ${missing} exists`, context: { fromObjectId: [fromId], toObjectId: [toId] } });
        continue;
      }
      this.link(from, fromId, to, toId);
      results.push({ from: { id: fromId }, to: { id: toId }, associationSpec: { associationCategory: 'HUBSPOT_DEFINED', associationTypeId: typeId } });
    }
    const timing = { startedAt: new Date().toISOString(), completedAt: new Date().toISOString() };
    if (errors.length > 0) return json(207, { status: 'COMPLETE', results, numErrors: errors.length, errors, ...timing });
    return json(200, { status: 'COMPLETE', results, ...timing });
  }

  private link(from: string, fromId: string, to: string, toId: string): void {
    const forward = this.links.get(`${from}:${fromId}`) ?? new Set<string>();
    forward.add(`${to}:${toId}`);
    this.links.set(`${from}:${fromId}`, forward);
    const back = this.links.get(`${to}:${toId}`) ?? new Set<string>();
    back.add(`${from}:${fromId}`);
    this.links.set(`${to}:${toId}`, back);
  }

  // ------------------------------------------------------------ helpers

  private table(object: string): Map<string, HsObject> {
    let table = this.objects.get(object);
    if (table === undefined) {
      table = new Map();
      this.objects.set(object, table);
    }
    return table;
  }

  /** What a record about to be created looks like (its id is final once stored). */
  private preview(): HsObject {
    const now = new Date().toISOString();
    return { id: String(this.seq + 1), properties: { hs_createdate: now, hs_lastmodifieddate: now }, createdAt: now, updatedAt: now, archived: false };
  }

  /** `viaApi`: created by a client write, so search finds it only searchIndexDelayMs later (seeded records at once). */
  private store(object: string, properties: Record<string, string>, viaApi = false): HsObject {
    this.seq += 1;
    const id = String(this.seq);
    const now = new Date().toISOString();
    const row: HsObject = { id, properties: { ...properties, hs_object_id: id, hs_createdate: now, hs_lastmodifieddate: now }, createdAt: now, updatedAt: now, archived: false };
    this.table(object).set(id, row);
    if (viaApi && this.searchIndexDelayMs > 0) this.indexedAt.set(`${object}:${id}`, Date.now() + this.searchIndexDelayMs);
    this.index(object, row);
    return row;
  }

  private patch(object: string, existing: HsObject, properties: Record<string, string>): HsObject {
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

  private index(object: string, row: HsObject): void {
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
}

export interface StartedFakeHubSpot {
  fake: FakeHubSpot;
  url: string;
  /** What a worker process needs to use it. */
  env: Record<string, string>;
}

/**
 * A fake portal served over HTTP, for worker processes and the benchmark
 * (raise `tenSecondLimit` there: the default is a real portal's 190 per 10 s).
 */
export async function startFakeHubSpot(options: FakeHubSpotOptions & { port?: number; latencyMs?: number } = {}): Promise<StartedFakeHubSpot> {
  const fake = new FakeHubSpot(options);
  fake.latencyMs = options.latencyMs ?? 0;
  const url = await fake.listen(options.port ?? 0);
  return { fake, url, env: { CRM_TARGET: 'hubspot', HUBSPOT_BASE_URL: url, HUBSPOT_ACCESS_TOKEN: fake.accessToken } };
}

function matchFilter(properties: Record<string, string>, filter: Record<string, unknown>): boolean {
  const name = typeof filter['propertyName'] === 'string' ? filter['propertyName'] : '';
  const actual = properties[name];
  const value = typeof filter['value'] === 'string' || typeof filter['value'] === 'number' ? String(filter['value']).toLowerCase() : undefined;
  const values = Array.isArray(filter['values']) ? filter['values'].map((v) => String(v).toLowerCase()) : [];
  const lower = actual?.toLowerCase();
  switch (filter['operator']) {
    case 'EQ':
      return lower !== undefined && lower === value;
    case 'NEQ':
      return lower !== value;
    case 'IN':
      return lower !== undefined && lower !== '' && values.includes(lower);
    case 'NOT_IN':
      return lower === undefined || !values.includes(lower);
    case 'HAS_PROPERTY':
      return actual !== undefined && actual !== '';
    case 'NOT_HAS_PROPERTY':
      return actual === undefined || actual === '';
    default:
      return false;
  }
}

function objectName(segment: string | undefined): string {
  const name = segment ?? '';
  return TYPE_IDS[name] ?? name;
}

/** HubSpot ids are numbers in strings: compare as numbers. */
export function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

function stringProps(value: unknown): Record<string, string> {
  if (!isObject(value)) return {};
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value)) out[name] = v === null || v === undefined ? '' : String(v);
  return out;
}

function parseBody(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
