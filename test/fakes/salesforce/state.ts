import { createPublicKey, randomBytes } from 'node:crypto';
import { FakeCrm } from '../http';
import { type SalesforceRequestKind, type SObjectValue, type SObject, PREFIX, type FakeSalesforceOptions, type ConnectedApp, type ValidationRule, formatId } from './shapes';

/** FakeSalesforce's state: options, seeding, inspection and record storage. */
export abstract class SalesforceState extends FakeCrm<SalesforceRequestKind> {
  instanceUrl: string;
  loginUrl: string;
  readonly orgId = '00D000000000001AAA';
  readonly externalIdField: string;
  apiDailyLimit: number;
  apiUsage = 0;
  /** Token grants answered successfully, by grant type. */
  readonly grants: string[] = [];
  protected readonly tables = new Map<string, Map<string, SObject>>();
  /** Task Id by external id value: upserts stay O(1) with 100,000 Tasks. */
  protected readonly byExternalId = new Map<string, Set<string>>();
  protected readonly apps = new Map<string, ConnectedApp>();
  protected readonly refreshTokens = new Map<string, string>();
  protected readonly sessions = new Set<string>();
  protected readonly customFields = new Set<string>();
  protected readonly rules: Array<{ object: string; rule: ValidationRule }> = [];
  /** Deleted records SOSL still finds (`object` → id → row): the search index lags deletions. */
  protected readonly searchGhosts = new Map<string, Map<string, SObject>>();
  protected readonly allowAnyCustomField: boolean;
  protected seq = 0;

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

  // ------------------------------------------------------------- helpers

  protected table(object: string): Map<string, SObject> {
    let table = this.tables.get(object);
    if (table === undefined) {
      table = new Map();
      this.tables.set(object, table);
    }
    return table;
  }

  protected put(object: string, row: SObject): void {
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

  protected peekId(object: string): string {
    return formatId(PREFIX[object] ?? 'a00', this.seq + 1);
  }

  protected newId(object: string): string {
    this.seq += 1;
    return formatId(PREFIX[object] ?? 'a00', this.seq);
  }

  protected attributes(object: string, id: string): { type: string; url: string } {
    return { type: object, url: `/services/data/v62.0/sobjects/${object}/${id}` };
  }

  protected limitHeader(): Record<string, string> {
    return { 'Sforce-Limit-Info': `api-usage=${this.apiUsage}/${this.apiDailyLimit}` };
  }

  protected userByUsername(username: string): SObject | undefined {
    return [...this.table('User').values()].find((u) => u['Username'] === username);
  }

  protected firstUserId(): string | undefined {
    return [...this.table('User').keys()][0];
  }
}
