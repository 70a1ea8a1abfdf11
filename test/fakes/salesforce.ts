import { createPublicKey, createVerify, randomBytes, type KeyObject } from 'node:crypto';
import { FakeCrm, json, type Fault, type FakeRequest, type FakeResponse } from './http';

/**
 * A stateful fake of the Salesforce REST API, answering with the real shapes:
 *  - POST /services/oauth2/token: client_credentials (with a run-as user),
 *    refresh_token, and the JWT bearer grant (RS256 checked against the
 *    certificate registered for the connected app); OAuth error bodies.
 *  - GET  /services/data/vXX.X/search?q=FIND {...} IN PHONE FIELDS RETURNING Contact(...), Lead(...)
 *    (phone search on digits, matching stored numbers in any format)
 *  - GET  /services/data/vXX.X/query?q=SELECT ... WHERE f IN (...) AND g = x
 *  - PATCH /services/data/vXX.X/composite/sobjects/{Type}/{ExtIdField}
 *    (sObject Collections upsert: 200 with one result per record, per-record
 *    errors carrying statusCode; top-level errors carrying errorCode)
 *  - PATCH /services/data/vXX.X/sobjects/{Type}/{ExtIdField}/{value} (201 created / 200 updated)
 *  - GET  /services/data/vXX.X/sobjects/{Type}/{Id}
 * Every data response carries Sforce-Limit-Info; past the daily limit the
 * org answers 403 REQUEST_LIMIT_EXCEEDED. Task fields are checked like an
 * org would: unknown fields, restricted picklists, references (WhoId,
 * OwnerId, WhatId), TaskSubtype being create-only, and validation rules
 * added by tests.
 */

export type SalesforceRequestKind = 'token' | 'sosl' | 'soql' | 'upsert' | 'upsert-one' | 'retrieve' | 'other';

export type SObjectValue = string | number | boolean | null;
export interface SObject {
  Id: string;
  [field: string]: SObjectValue;
}

interface FieldDef {
  /** The JSON type the API deserializes the value into; a value of another type fails the whole request. */
  type?: 'int' | 'boolean';
  createable?: boolean;
  updateable?: boolean;
  picklist?: readonly string[];
  references?: readonly string[];
  label?: string;
}

const TASK_FIELDS: Record<string, FieldDef> = {
  Subject: {},
  Description: {},
  ActivityDate: {},
  Status: { picklist: ['Not Started', 'In Progress', 'Completed', 'Waiting on someone else', 'Deferred'] },
  Priority: { picklist: ['High', 'Normal', 'Low'] },
  Type: {},
  CallType: { picklist: ['Internal', 'Inbound', 'Outbound'], label: 'Call Type' },
  CallDurationInSeconds: { type: 'int' },
  CallDisposition: {},
  CallObject: {},
  TaskSubtype: { picklist: ['Task', 'Email', 'ListEmail', 'Cadence', 'Call', 'LinkedIn'], updateable: false, label: 'Task Subtype' },
  WhoId: { references: ['Contact', 'Lead'], label: 'Name ID' },
  WhatId: { references: ['Account', 'Opportunity', 'Case'], label: 'Related To ID' },
  OwnerId: { references: ['User'], label: 'Assigned To ID' },
  ReminderDateTime: {},
  IsReminderSet: { type: 'boolean' },
  Id: { createable: false, updateable: false },
  CreatedDate: { createable: false, updateable: false },
  LastModifiedDate: { createable: false, updateable: false },
};

const PREFIX: Record<string, string> = { Task: '00T', Contact: '003', Lead: '00Q', User: '005', Account: '001', Case: '500', Opportunity: '006' };

const PHONE_FIELDS: Record<string, readonly string[]> = {
  Contact: ['Phone', 'MobilePhone', 'HomePhone', 'OtherPhone', 'AssistantPhone'],
  Lead: ['Phone', 'MobilePhone'],
  Account: ['Phone'],
};

export interface FakeSalesforceOptions {
  /** Where the org's API lives (msw mode). listen() replaces it with the server URL. */
  instanceUrl?: string;
  /** Where the token endpoint lives (msw mode). listen() replaces it with the server URL. */
  loginUrl?: string;
  /** The Task External ID field (Text, External ID, Unique). */
  externalIdField?: string;
  /** Daily API request allowance reported in Sforce-Limit-Info. */
  apiDailyLimit?: number;
  /** Accept any `__c` field on Task (true) or only those declared with `addCustomField`. */
  allowAnyCustomField?: boolean;
}

interface ConnectedApp {
  clientId: string;
  clientSecret: string | undefined;
  certificate: KeyObject | undefined;
  runAsUserId: string | undefined;
}

export type ValidationRule = (record: SObject, object: string) => string | undefined;

export class FakeSalesforce extends FakeCrm<SalesforceRequestKind> {
  instanceUrl: string;
  loginUrl: string;
  readonly orgId = '00D000000000001AAA';
  readonly externalIdField: string;
  apiDailyLimit: number;
  apiUsage = 0;
  /** Token grants answered successfully, by grant type. */
  readonly grants: string[] = [];
  private readonly tables = new Map<string, Map<string, SObject>>();
  /** Task Id by external id value: upserts stay O(1) with 100,000 Tasks. */
  private readonly byExternalId = new Map<string, Set<string>>();
  private readonly apps = new Map<string, ConnectedApp>();
  private readonly refreshTokens = new Map<string, string>();
  private readonly sessions = new Set<string>();
  private readonly customFields = new Set<string>();
  private readonly rules: Array<{ object: string; rule: ValidationRule }> = [];
  /** Deleted records SOSL still finds (`object` → id → row): the search index lags deletions. */
  private readonly searchGhosts = new Map<string, Map<string, SObject>>();
  private readonly allowAnyCustomField: boolean;
  private seq = 0;

  constructor(options: FakeSalesforceOptions = {}) {
    super();
    this.instanceUrl = options.instanceUrl ?? 'https://fake-org.my.salesforce.com';
    this.loginUrl = options.loginUrl ?? 'https://login.fake-salesforce.test';
    this.externalIdField = options.externalIdField ?? 'Call_Sync_Id__c';
    this.apiDailyLimit = options.apiDailyLimit ?? 1_000_000;
    this.allowAnyCustomField = options.allowAnyCustomField ?? true;
    this.customFields.add(this.externalIdField);
  }

  // ------------------------------------------------------------ seeding

  insert(object: string, fields: Record<string, SObjectValue>): string {
    const id = this.newId(object);
    const now = new Date().toISOString();
    this.put(object, { ...fields, Id: id, CreatedDate: now, LastModifiedDate: now });
    return id;
  }

  addContact(fields: Record<string, SObjectValue>): string {
    return this.insert('Contact', { LastName: 'Contact', ...fields });
  }

  addLead(fields: Record<string, SObjectValue>): string {
    return this.insert('Lead', { LastName: 'Lead', Company: 'Unknown', IsConverted: false, ...fields });
  }

  addUser(fields: Record<string, SObjectValue> & { Email: string }): string {
    return this.insert('User', { Username: fields.Email, IsActive: true, LastName: 'User', ...fields });
  }

  addAccount(fields: Record<string, SObjectValue>): string {
    return this.insert('Account', { Name: 'Account', ...fields });
  }

  /** Changes fields of a record, as a user editing it in Salesforce would. */
  update(object: string, id: string, fields: Record<string, SObjectValue>): void {
    const row = this.table(object).get(id);
    if (row === undefined) throw new Error(`no ${object} ${id}`);
    this.put(object, { ...row, ...fields, Id: id, LastModifiedDate: new Date().toISOString() });
  }

  /**
   * Deletes a record (a Contact merged away, a User removed): references to
   * it are refused from now on. `stillSearchable`: SOSL keeps finding it, as
   * Salesforce's search index, updated asynchronously, may for a while.
   */
  remove(object: string, id: string, options: { stillSearchable?: boolean } = {}): void {
    const row = this.table(object).get(id);
    this.table(object).delete(id);
    if (row === undefined || options.stillSearchable !== true) return;
    const ghosts = this.searchGhosts.get(object) ?? new Map<string, SObject>();
    ghosts.set(id, row);
    this.searchGhosts.set(object, ghosts);
  }

  addCustomField(field: string): void {
    this.customFields.add(field);
  }

  /** A validation rule on `object`: answer a message to reject the record (FIELD_CUSTOM_VALIDATION_EXCEPTION). */
  addValidationRule(object: string, rule: ValidationRule): void {
    this.rules.push({ object, rule });
  }

  /** A connected app; `certificatePem` enables the JWT flow, `runAsUsername` the client credentials flow. */
  registerConnectedApp(app: { clientId: string; clientSecret?: string; certificatePem?: string; runAsUsername?: string }): void {
    const runAs = app.runAsUsername === undefined ? undefined : this.userByUsername(app.runAsUsername)?.Id;
    this.apps.set(app.clientId, {
      clientId: app.clientId,
      clientSecret: app.clientSecret,
      certificate: app.certificatePem === undefined ? undefined : createPublicKey(app.certificatePem),
      runAsUserId: runAs ?? (app.runAsUsername === undefined ? undefined : this.addUser({ Email: app.runAsUsername })),
    });
  }

  issueRefreshToken(clientId: string): string {
    const token = `5Aep${randomBytes(12).toString('hex')}`;
    this.refreshTokens.set(token, clientId);
    return token;
  }

  /** A session token accepted until expireSessions() (for SALESFORCE_ACCESS_TOKEN). */
  issueAccessToken(): string {
    const token = `${this.orgId}!AQ${randomBytes(16).toString('hex')}`;
    this.sessions.add(token);
    return token;
  }

  /** Every current session is invalid from now on: next request gets 401 INVALID_SESSION_ID. */
  expireSessions(): void {
    this.sessions.clear();
  }

  setApiUsage(used: number, limit = this.apiDailyLimit): void {
    this.apiUsage = used;
    this.apiDailyLimit = limit;
  }

  // ---------------------------------------------------------- inspection

  records(object: string): SObject[] {
    return [...this.table(object).values()].map((r) => ({ ...r }));
  }

  tasks(): SObject[] {
    return this.records('Task');
  }

  taskByExternalId(externalId: string): SObject | undefined {
    const [id] = this.byExternalId.get(externalId) ?? [];
    return id === undefined ? undefined : this.get('Task', id);
  }

  get(object: string, id: string): SObject | undefined {
    const found = this.table(object).get(id);
    return found === undefined ? undefined : { ...found };
  }

  summary(): Record<string, unknown> {
    return {
      tables: Object.fromEntries([...this.tables].map(([name, rows]) => [name, rows.size])),
      apiUsage: this.apiUsage,
      grants: this.grants.length,
    };
  }

  // ------------------------------------------------------------ plumbing

  protected origins(): string[] {
    return [...new Set([this.instanceUrl, this.loginUrl])];
  }

  protected useBaseUrl(url: string): void {
    this.instanceUrl = url;
    this.loginUrl = url;
  }

  protected kindOf(req: FakeRequest): SalesforceRequestKind {
    const path = req.url.pathname;
    if (path === '/services/oauth2/token') return 'token';
    if (/^\/services\/data\/v\d+\.\d+\/search\/?$/.test(path)) return 'sosl';
    if (/^\/services\/data\/v\d+\.\d+\/query(\/.*)?$/.test(path)) return 'soql';
    if (/^\/services\/data\/v\d+\.\d+\/composite\/sobjects\/\w+\/\w+$/.test(path) && req.method === 'PATCH') return 'upsert';
    if (/^\/services\/data\/v\d+\.\d+\/sobjects\/\w+\/\w+\/[^/]+$/.test(path) && req.method === 'PATCH') return 'upsert-one';
    if (/^\/services\/data\/v\d+\.\d+\/sobjects\/\w+\/\w+$/.test(path) && req.method === 'GET') return 'retrieve';
    return 'other';
  }

  protected override writtenExternalIds(req: FakeRequest, kind: SalesforceRequestKind): string[] {
    if (kind === 'upsert-one') {
      return [decodeURIComponent(req.url.pathname.split('/').pop() ?? '')];
    }
    if (kind !== 'upsert') return [];
    const field = req.url.pathname.split('/').pop() ?? this.externalIdField;
    const body = parseBody(req.body);
    const records = isObject(body) && Array.isArray(body['records']) ? body['records'] : [];
    return records.flatMap((r) => (isObject(r) && typeof r[field] === 'string' ? [r[field]] : []));
  }

  protected faultResponse(fault: Fault, req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    switch (fault.type) {
      case 'auth':
        return json(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
      case 'quota':
        return json(403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], this.limitHeader());
      case 'concurrent-limit':
        return json(403, [{ message: 'ConcurrentPerOrgLongTxn Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
      case 'rate-limit':
        return json(
          429,
          [{ message: 'Too many requests', errorCode: 'REQUEST_LIMIT_EXCEEDED_RATE' }],
          fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) },
        );
      case 'row-lock':
        if (kind === 'upsert') {
          const body = parseBody(req.body);
          const records = isObject(body) && Array.isArray(body['records']) ? body['records'] : [];
          return json(
            200,
            records.map(() => ({
              success: false,
              errors: [{ statusCode: 'UNABLE_TO_LOCK_ROW', message: 'unable to obtain exclusive access to this record', fields: [] }],
            })),
            this.limitHeader(),
          );
        }
        return json(503, [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
      case 'unavailable':
      case 'late':
      case 'network':
      case 'answer':
        return json(503, [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
    }
  }

  protected route(req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    if (kind === 'token') return this.token(req);
    if (!req.url.pathname.startsWith('/services/data/')) {
      return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    const auth = req.headers['authorization'] ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!this.sessions.has(token)) {
      return json(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    this.apiUsage += 1;
    if (this.apiUsage > this.apiDailyLimit) {
      return json(403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], this.limitHeader());
    }
    const response = this.routeData(req, kind);
    return { ...response, headers: { ...this.limitHeader(), ...(response.headers ?? {}) } };
  }

  private routeData(req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    const parts = req.url.pathname.split('/').filter((p) => p !== '');
    switch (kind) {
      case 'sosl':
        return this.search(req.url.searchParams.get('q') ?? '');
      case 'soql':
        return this.query(req.url.searchParams.get('q') ?? '');
      case 'upsert': {
        const [, , , , , type = '', field = ''] = parts;
        return this.upsertCollection(type, field, parseBody(req.body));
      }
      case 'upsert-one': {
        const [, , , , type = '', field = '', value = ''] = parts;
        return this.upsertSingle(type, field, decodeURIComponent(value), parseBody(req.body));
      }
      case 'retrieve': {
        const [, , , , type = '', id = ''] = parts;
        const found = this.table(type).get(id);
        if (found === undefined) return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
        return json(200, { attributes: this.attributes(type, id), ...found });
      }
      default:
        return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
  }

  private limitHeader(): Record<string, string> {
    return { 'Sforce-Limit-Info': `api-usage=${this.apiUsage}/${this.apiDailyLimit}` };
  }

  // --------------------------------------------------------------- OAuth

  private token(req: FakeRequest): FakeResponse {
    if (req.method !== 'POST') return json(405, { error: 'invalid_request', error_description: 'must use HTTP POST' });
    const params = new URLSearchParams(req.body);
    const grantType = params.get('grant_type');
    const invalidClient = json(400, { error: 'invalid_client', error_description: 'invalid client credentials' });
    let userId: string | undefined;
    if (grantType === 'client_credentials') {
      const app = this.apps.get(params.get('client_id') ?? '');
      if (app === undefined || app.clientSecret === undefined || app.clientSecret !== params.get('client_secret')) return invalidClient;
      if (app.runAsUserId === undefined) return json(400, { error: 'invalid_grant', error_description: 'no client credentials user enabled' });
      userId = app.runAsUserId;
    } else if (grantType === 'refresh_token') {
      const clientId = params.get('client_id') ?? '';
      const app = this.apps.get(clientId);
      if (app === undefined) return invalidClient;
      if (app.clientSecret !== undefined && params.has('client_secret') && params.get('client_secret') !== app.clientSecret) return invalidClient;
      if (this.refreshTokens.get(params.get('refresh_token') ?? '') !== clientId) {
        return json(400, { error: 'invalid_grant', error_description: 'expired access/refresh token' });
      }
      userId = app.runAsUserId ?? this.firstUserId();
    } else if (grantType === 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      const result = this.verifyJwt(params.get('assertion') ?? '');
      if (typeof result !== 'string') return result;
      userId = result;
    } else {
      return json(400, { error: 'unsupported_grant_type', error_description: 'grant type not supported' });
    }
    const accessToken = this.issueAccessToken();
    this.grants.push(grantType);
    return json(200, {
      access_token: accessToken,
      instance_url: this.instanceUrl,
      id: `${this.loginUrl}/id/${this.orgId}/${userId ?? ''}`,
      token_type: 'Bearer',
      issued_at: String(Date.now()),
      signature: randomBytes(32).toString('base64'),
      scope: 'api',
    });
  }

  private verifyJwt(assertion: string): string | FakeResponse {
    const invalid = (description: string) => json(400, { error: 'invalid_grant', error_description: description });
    const [header, claims, signature] = assertion.split('.');
    if (header === undefined || claims === undefined || signature === undefined) return invalid('invalid assertion');
    let payload: Record<string, unknown>;
    try {
      payload = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return invalid('invalid assertion');
    }
    const app = this.apps.get(typeof payload['iss'] === 'string' ? payload['iss'] : '');
    if (app?.certificate === undefined) return json(400, { error: 'invalid_client_id', error_description: 'client identifier invalid' });
    const signed = createVerify('RSA-SHA256').update(`${header}.${claims}`).verify(app.certificate, Buffer.from(signature, 'base64url'));
    if (!signed) return invalid('invalid assertion');
    const audiences = new Set(['https://login.salesforce.com', 'https://test.salesforce.com', new URL(this.loginUrl).origin]);
    if (typeof payload['aud'] !== 'string' || !audiences.has(payload['aud'])) return invalid('audience is invalid');
    if (typeof payload['exp'] !== 'number' || payload['exp'] * 1000 < Date.now()) return invalid('expired authorization code');
    const user = this.userByUsername(typeof payload['sub'] === 'string' ? payload['sub'] : '');
    if (user === undefined) return invalid('user hasn\'t approved this consumer');
    return user.Id;
  }

  private userByUsername(username: string): SObject | undefined {
    return [...this.table('User').values()].find((u) => u['Username'] === username);
  }

  private firstUserId(): string | undefined {
    return [...this.table('User').keys()][0];
  }

  // ---------------------------------------------------------------- SOSL

  private search(sosl: string): FakeResponse {
    const malformed = (message: string) => json(400, [{ message, errorCode: 'MALFORMED_SEARCH' }]);
    const find = /^\s*FIND\s*\{/i.exec(sosl);
    if (find === null) return malformed('search must start with FIND {');
    // The search text runs to the first unescaped closing brace.
    let i = find[0].length;
    let text = '';
    for (; i < sosl.length; i += 1) {
      const c = sosl[i];
      if (c === '\\') {
        text += sosl.slice(i, i + 2);
        i += 1;
        continue;
      }
      if (c === '}') break;
      text += c;
    }
    if (i >= sosl.length) return malformed('unterminated search text');
    const rest = sosl.slice(i + 1);
    if (!/^\s*IN\s+PHONE\s+FIELDS\b/i.test(rest)) return malformed('the fake only searches IN PHONE FIELDS');
    if (text.length > 10_000) return json(200, { searchRecords: [] });
    const terms = text
      .split(/\s+OR\s+/i)
      .map((t) => t.trim().replace(/^"|"$/g, '').replace(/\\(.)/g, '$1').replace(/\D/g, ''))
      .filter((t) => t.length > 0);
    const matcher = phoneMatcher(terms);
    const returning = /RETURNING\s+(.*?)(?:\s+LIMIT\s+(\d+))?\s*$/is.exec(rest);
    const limit = returning?.[2] === undefined ? 2000 : Math.min(2000, Number(returning[2]));
    const specs = [...(returning?.[1] ?? '').matchAll(/(\w+)\s*\(([^)]*)\)/g)];
    // LIMIT caps the answer as a whole, over every object RETURNING names.
    const out: Array<Record<string, unknown>> = [];
    for (const spec of specs) {
      if (out.length >= limit) break;
      const object = spec[1] ?? '';
      const inner = spec[2] ?? '';
      const [fieldList = '', where] = inner.split(/\s+WHERE\s+/i);
      const fields = fieldList.split(',').map((f) => f.trim()).filter((f) => f !== '');
      const notConverted = where !== undefined && /IsConverted\s*=\s*false/i.test(where);
      const ghosts = this.searchGhosts.get(object);
      const rows = ghosts === undefined ? this.table(object).values() : [...this.table(object).values(), ...ghosts.values()];
      for (const row of rows) {
        if (notConverted && row['IsConverted'] === true) continue;
        const phones = (PHONE_FIELDS[object] ?? []).map((f) => row[f]).filter((v): v is string => typeof v === 'string');
        if (!phones.some(matcher)) continue;
        const result: Record<string, unknown> = { attributes: this.attributes(object, row.Id) };
        for (const f of fields) result[f] = row[f] ?? null;
        out.push(result);
        if (out.length >= limit) break;
      }
    }
    return json(200, { searchRecords: out });
  }

  // ---------------------------------------------------------------- SOQL

  private query(soql: string): FakeResponse {
    const parsed = parseSoql(soql);
    if (typeof parsed === 'string') return json(400, [{ message: parsed, errorCode: 'MALFORMED_QUERY' }]);
    const table = this.tables.get(parsed.object);
    if (table === undefined && !(parsed.object in PREFIX)) {
      return json(400, [{ message: `sObject type '${parsed.object}' is not supported.`, errorCode: 'INVALID_TYPE' }]);
    }
    const rows = [...(table?.values() ?? [])].filter((row) =>
      parsed.conditions.every((cond) => {
        const value = row[cond.field];
        return cond.values.some((expected) => sameValue(value, expected));
      }),
    );
    rows.sort((a, b) => (a.Id < b.Id ? -1 : 1));
    const records = rows.slice(0, parsed.limit ?? 2000).map((row) => {
      const out: Record<string, unknown> = { attributes: this.attributes(parsed.object, row.Id) };
      for (const f of parsed.fields) out[f] = row[f] ?? null;
      return out;
    });
    return json(200, { totalSize: records.length, done: true, records });
  }

  // -------------------------------------------------------------- upsert

  private upsertCollection(type: string, field: string, body: unknown): FakeResponse {
    if (!isObject(body) || !Array.isArray(body['records'])) {
      return json(400, [{ message: 'Json Deserialization failed on token \'null\'', errorCode: 'JSON_PARSER_ERROR' }]);
    }
    const records: unknown[] = body['records'];
    if (records.length > 200) {
      return json(400, [{ message: 'Maximum number of records allowed is 200', errorCode: 'EXCEEDED_ID_LIMIT' }]);
    }
    const fieldProblem = this.checkExternalIdField(type, field);
    if (fieldProblem !== undefined) return fieldProblem;
    // An unknown field, or a value the field's type cannot hold, fails the
    // request as a whole: the body cannot be deserialized.
    const text = JSON.stringify(body);
    for (const record of records) {
      if (!isObject(record)) return json(400, [{ message: 'Json Deserialization failed', errorCode: 'JSON_PARSER_ERROR' }]);
      for (const [name, value] of Object.entries(record)) {
        if (name === 'attributes') continue;
        if (!this.knownField(type, name)) {
          return json(400, [{ message: `No such column '${name}' on sobject of type ${type}`, errorCode: 'INVALID_FIELD' }]);
        }
        const expected = type === 'Task' ? TASK_FIELDS[name]?.type : undefined;
        const fits = expected === undefined || value === null || (expected === 'int' ? Number.isInteger(value) : typeof value === 'boolean');
        if (!fits) {
          const column = text.indexOf(`"${name}":${JSON.stringify(value)}`) + name.length + 4;
          return json(400, [
            {
              message: `Cannot deserialize instance of ${expected} from VALUE_STRING value ${String(value)} or request may be missing a required field at [line:1, column:${column}]`,
              errorCode: 'JSON_PARSER_ERROR',
            },
          ]);
        }
      }
    }
    const allOrNone = body['allOrNone'] === true;
    const results = records.map((record) => this.upsertRecord(type, field, record as Record<string, unknown>, !allOrNone));
    if (allOrNone && results.some((r) => !r.success)) {
      return json(
        200,
        results.map((r) =>
          r.success ? { success: false, errors: [{ statusCode: 'ALL_OR_NONE_OPERATION_ROLLED_BACK', message: 'Record rolled back because not all records were valid and the request was using AllOrNone header', fields: [] }] } : r,
        ),
      );
    }
    if (allOrNone) {
      // Validated without applying above; apply now.
      return json(200, records.map((record) => this.upsertRecord(type, field, record as Record<string, unknown>, true)));
    }
    return json(200, results);
  }

  private upsertSingle(type: string, field: string, value: string, body: unknown): FakeResponse {
    const fieldProblem = this.checkExternalIdField(type, field);
    if (fieldProblem !== undefined) return fieldProblem;
    if (!isObject(body)) return json(400, [{ message: 'Json Deserialization failed', errorCode: 'JSON_PARSER_ERROR' }]);
    for (const name of Object.keys(body)) {
      if (name !== 'attributes' && !this.knownField(type, name)) {
        return json(400, [{ message: `No such column '${name}' on sobject of type ${type}`, errorCode: 'INVALID_FIELD' }]);
      }
    }
    const result = this.upsertRecord(type, field, { ...body, [field]: value }, true);
    if (!result.success) return json(400, result.errors.map((e) => ({ message: e.message, errorCode: e.statusCode, fields: e.fields })));
    return json(result.created ? 201 : 200, result);
  }

  private checkExternalIdField(type: string, field: string): FakeResponse | undefined {
    if (!(type in PREFIX)) return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    if (type !== 'Task' || field !== this.externalIdField) {
      return json(404, [{ errorCode: 'NOT_FOUND', message: `Provided external ID field does not exist or is not accessible: ${field}` }]);
    }
    return undefined;
  }

  private knownField(type: string, name: string): boolean {
    if (type !== 'Task') return true;
    if (name in TASK_FIELDS) return true;
    return name.endsWith('__c') && (this.allowAnyCustomField || this.customFields.has(name));
  }

  private upsertRecord(
    type: string,
    field: string,
    input: Record<string, unknown>,
    apply: boolean,
  ): { id?: string; success: boolean; errors: Array<{ statusCode: string; message: string; fields: string[] }>; created?: boolean } {
    const fail = (statusCode: string, message: string, fields: string[] = []) => ({ success: false, errors: [{ statusCode, message, fields }] });
    const values: Record<string, SObjectValue> = {};
    for (const [name, value] of Object.entries(input)) {
      if (name === 'attributes') continue;
      if (value !== null && typeof value === 'object') return fail('JSON_PARSER_ERROR', `Cannot deserialize ${name}`, [name]);
      values[name] = value as SObjectValue;
    }
    const externalId = values[field];
    if (typeof externalId !== 'string' || externalId === '') {
      return fail('REQUIRED_FIELD_MISSING', `Required fields are missing: [${field}]`, [field]);
    }
    const matches = [...(this.byExternalId.get(externalId) ?? [])].flatMap((id) => {
      const row = this.table(type).get(id);
      return row === undefined ? [] : [row];
    });
    if (matches.length > 1) return fail('DUPLICATE_EXTERNAL_ID', `${field}: more than one record found for external id field`, [field]);
    const existing = matches[0];
    const defs = type === 'Task' ? TASK_FIELDS : {};
    for (const [name, value] of Object.entries(values)) {
      const def = defs[name];
      if (def === undefined) continue;
      if (existing === undefined && def.createable === false) {
        return fail('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, [name]);
      }
      if (existing !== undefined && def.updateable === false) {
        return fail('INVALID_FIELD_FOR_INSERT_UPDATE', `Unable to create/update fields: ${name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.`, [name]);
      }
      if (def.picklist !== undefined && value !== null && !def.picklist.includes(String(value))) {
        return fail('INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST', `${def.label ?? name}: bad value for restricted picklist field: ${String(value)}`, [name]);
      }
      if (def.references !== undefined && value !== null) {
        const exists = def.references.some((object) => this.table(object).has(String(value)));
        if (!exists) return fail('INVALID_CROSS_REFERENCE_KEY', `${def.label ?? name}: id value of incorrect type: ${String(value)}`, [name]);
      }
    }
    const now = new Date().toISOString();
    const merged: SObject =
      existing === undefined
        ? { Status: 'Not Started', Priority: 'Normal', ...values, Id: this.peekId(type), CreatedDate: now, LastModifiedDate: now }
        : { ...existing, ...values, Id: existing.Id, LastModifiedDate: now };
    for (const { object, rule } of this.rules) {
      if (object !== type) continue;
      const message = rule(merged, type);
      if (message !== undefined) return fail('FIELD_CUSTOM_VALIDATION_EXCEPTION', message);
    }
    if (!apply) return { id: merged.Id, success: true, errors: [], created: existing === undefined };
    if (existing === undefined) merged.Id = this.newId(type);
    this.put(type, merged);
    return { id: merged.Id, success: true, errors: [], created: existing === undefined };
  }

  // ------------------------------------------------------------- helpers

  private table(object: string): Map<string, SObject> {
    let table = this.tables.get(object);
    if (table === undefined) {
      table = new Map();
      this.tables.set(object, table);
    }
    return table;
  }

  private put(object: string, row: SObject): void {
    const table = this.table(object);
    const previous = table.get(row.Id)?.[this.externalIdField];
    if (typeof previous === 'string') this.byExternalId.get(previous)?.delete(row.Id);
    table.set(row.Id, row);
    const value = row[this.externalIdField];
    if (object === 'Task' && typeof value === 'string') {
      const ids = this.byExternalId.get(value) ?? new Set<string>();
      ids.add(row.Id);
      this.byExternalId.set(value, ids);
    }
  }

  private peekId(object: string): string {
    return formatId(PREFIX[object] ?? 'a00', this.seq + 1);
  }

  private newId(object: string): string {
    this.seq += 1;
    return formatId(PREFIX[object] ?? 'a00', this.seq);
  }

  private attributes(object: string, id: string): { type: string; url: string } {
    return { type: object, url: `/services/data/v62.0/sobjects/${object}/${id}` };
  }
}

export interface StartedFakeSalesforce {
  fake: FakeSalesforce;
  url: string;
  /** What a worker process needs to use it: client credentials against the fake. */
  env: Record<string, string>;
}

/**
 * A fake org served over HTTP with a connected app for the client
 * credentials flow, for worker processes and the benchmark:
 *   const { fake, env } = await startFakeSalesforce({ latencyMs: 50 });
 *   spawn('node', [...], { env: { ...process.env, ...env } });
 */
export async function startFakeSalesforce(
  options: FakeSalesforceOptions & { port?: number; latencyMs?: number } = {},
): Promise<StartedFakeSalesforce> {
  const fake = new FakeSalesforce(options);
  fake.latencyMs = options.latencyMs ?? 0;
  const url = await fake.listen(options.port ?? 0);
  fake.registerConnectedApp({ clientId: 'fake-client-id', clientSecret: 'fake-client-secret', runAsUsername: 'integration@callsync.test' });
  return {
    fake,
    url,
    env: {
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: url,
      SALESFORCE_CLIENT_ID: 'fake-client-id',
      SALESFORCE_CLIENT_SECRET: 'fake-client-secret',
      SALESFORCE_EXTERNAL_ID_FIELD: fake.externalIdField,
    },
  };
}

function formatId(prefix: string, n: number): string {
  return `${prefix}${String(n).padStart(12, '0')}AAA`;
}

/**
 * The fake's phone search: a stored number matches a term when their digits
 * are equal, or one ends with the other and the shorter has at least 7
 * digits. Looser than an exact match on purpose, like a real search index:
 * the client must check candidates itself. Built once per search so each
 * stored number costs a few set lookups whatever the number of terms.
 */
export function phoneMatcher(terms: string[]): (stored: string) => boolean {
  const exact = new Set(terms.filter((t) => t !== ''));
  const suffixes = new Set<string>();
  for (const term of exact) for (let i = 1; term.length - i >= 7; i += 1) suffixes.add(term.slice(i));
  return (stored) => {
    const digits = stored.replace(/\D/g, '');
    if (digits === '') return false;
    if (exact.has(digits) || (digits.length >= 7 && suffixes.has(digits))) return true;
    for (let i = 1; digits.length - i >= 7; i += 1) if (exact.has(digits.slice(i))) return true;
    return false;
  };
}

interface SoqlQuery {
  fields: string[];
  object: string;
  conditions: Array<{ field: string; values: SObjectValue[] }>;
  limit: number | undefined;
}

/** SELECT a, b FROM X [WHERE f IN ('..') AND g = 'x' AND h = true] [ORDER BY ...] [LIMIT n]. */
export function parseSoql(soql: string): SoqlQuery | string {
  const m = /^\s*SELECT\s+(.+?)\s+FROM\s+(\w+)(?:\s+WHERE\s+(.+?))?(?:\s+ORDER\s+BY\s+[\w\s,]+?)?(?:\s+LIMIT\s+(\d+))?\s*$/is.exec(soql);
  if (m === null) return `unexpected token in query: ${soql.slice(0, 40)}`;
  const fields = (m[1] ?? '').split(',').map((f) => f.trim());
  const conditions: SoqlQuery['conditions'] = [];
  for (const part of splitOutsideQuotes(m[3] ?? '', /\s+AND\s+/iy)) {
    const text = part.trim();
    if (text === '') continue;
    const inList = /^(\w+)\s+IN\s*\((.*)\)$/is.exec(text);
    const equals = /^(\w+)\s*=\s*(.+)$/s.exec(text);
    if (inList !== null) conditions.push({ field: inList[1] ?? '', values: parseLiterals(inList[2] ?? '') });
    else if (equals !== null) conditions.push({ field: equals[1] ?? '', values: parseLiterals(equals[2] ?? '') });
    else return `unexpected condition: ${text}`;
  }
  return { fields, object: m[2] ?? '', conditions, limit: m[4] === undefined ? undefined : Number(m[4]) };
}

function splitOutsideQuotes(text: string, separator: RegExp): string[] {
  const parts: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i] ?? '';
    if (quoted && c === '\\') {
      current += text.slice(i, i + 2);
      i += 1;
      continue;
    }
    if (c === "'") quoted = !quoted;
    if (!quoted) {
      separator.lastIndex = i;
      const sep = separator.exec(text);
      if (sep !== null) {
        parts.push(current);
        current = '';
        i += sep[0].length - 1;
        continue;
      }
    }
    current += c;
  }
  parts.push(current);
  return parts;
}

function parseLiterals(text: string): SObjectValue[] {
  const values: SObjectValue[] = [];
  const re = /'((?:[^'\\]|\\.)*)'|\b(true|false|null)\b|(-?\d+(?:\.\d+)?)/gi;
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) values.push(m[1].replace(/\\(.)/g, '$1'));
    else if (m[2] !== undefined) values.push(m[2].toLowerCase() === 'null' ? null : m[2].toLowerCase() === 'true');
    else if (m[3] !== undefined) values.push(Number(m[3]));
  }
  return values;
}

function sameValue(actual: SObjectValue | undefined, expected: SObjectValue): boolean {
  if (typeof actual === 'string' && typeof expected === 'string') return actual.toLowerCase() === expected.toLowerCase();
  return (actual ?? null) === expected;
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
