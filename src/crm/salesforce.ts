import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Connection, type HttpRequest, type HttpResponse, type Schema, type TokenResponse } from 'jsforce/lib/core.js';
import { HttpApi } from 'jsforce/lib/http-api.js';
import type { Config } from '../config';
import { salesforceAuthMode, type SalesforceAuthMode } from '../config';
import type { Logger } from '../log';
import type { CrmFieldValue, CrmRecord, LookupRequest } from '../core/crm-record';
import type { JsonValue } from '../core/json';
import { TtlCache } from './cache';
import { systemClock, type Clock } from '../core/time';
import { Deadline } from './deadline';
import { asJson, groupByItem, isRecord, parseJsonBody, parseRetryAfter, stringField, transportError, worstError } from './errors';
import { isolationBudget, sendIsolating, type BatchAttempt } from './isolate';
import { BatchLoader, lookupTtlMs, tolerateRefusedLookup, unlessStaleLookup, type Loaded, type RefusedLookup } from './loader';
import { Pacer } from './pacer';
import { regionOf, searchDigits, toE164, isE164 } from '../core/phone';
import {
  SALESFORCE_API_VERSION_DEFAULT,
  buildSalesforceRecord,
  salesforceCollectionPath,
  salesforceCreateOnly,
  salesforceRecordProblem,
} from './salesforce-payload';
import { API_NAME, toJson, type SentRecord } from './sent';
import { type CrmTarget, type WriteItem, type WriteResult } from './types';
import { SyncError } from '../core/errors';

/**
 * Salesforce target: Tasks upserted by an External ID field through sObject
 * Collections, with WhoId/OwnerId/WhatId resolved in batches first.
 *
 * jsforce (pinned at 3.10.16: it sends through node-fetch, which msw can
 * intercept) provides the session: the OAuth2 token endpoint, and a refresh
 * function it calls on 401 INVALID_SESSION_ID. Requests go through its
 * HttpApi with its own retries switched off (it would retry GETs on 429/5xx
 * with 0.5-8 s sleeps, fighting the worker's schedule) and one session
 * refresh per request (it would otherwise refresh and resend forever while
 * the org keeps answering 401).
 */

const COLLECTION_LIMIT = 200;
/** SOSL drops logical operators past 4,000 characters of search text; stay under it. */
const SOSL_SEARCH_MAX_CHARS = 3_900;
/** The most rows one SOSL search returns; an answer that reaches it may have left matches out. */
const SOSL_LIMIT = 2_000;
/** Extra searches allowed to split a batch of numbers whose answer reached SOSL_LIMIT. */
const SOSL_SPLIT_BUDGET = 8;
const SOQL_IN_CHUNK = 100;
/** TotalRequests is a rolling 24 h window: capacity returns gradually, so probe hourly. */
const QUOTA_PROBE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const JWT_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

const CONTACT_PHONE_FIELDS = ['Phone', 'MobilePhone', 'HomePhone', 'OtherPhone', 'AssistantPhone'] as const;
const LEAD_PHONE_FIELDS = ['Phone', 'MobilePhone'] as const;

/**
 * Error codes worth retrying, whether a record answers them or the whole
 * request does (Salesforce sends UNABLE_TO_LOCK_ROW at the top level with a
 * 400 as well): the condition passes, the request itself was fine.
 */
const TRANSIENT_CODES = new Set(['UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'REQUEST_RUNNING_TOO_LONG', 'QUERY_TIMEOUT']);
/** Per-record status codes worth retrying; everything else a record answers is a rejection. */
const TRANSIENT_RECORD_CODES = new Set([...TRANSIENT_CODES, 'REQUEST_LIMIT_EXCEEDED']);
/**
 * Whole-request rejections that concern every record of the request alike:
 * the object or the External ID field is missing or not visible, the API is
 * off. No record is to blame, so nothing is bisected.
 */
const SHARED_REQUEST_CODES = new Set([
  'NOT_FOUND',
  'INVALID_TYPE',
  'EXCEEDED_ID_LIMIT',
  'API_DISABLED_FOR_ORG',
  'FUNCTIONALITY_NOT_ENABLED',
  'METHOD_NOT_ALLOWED',
]);

interface SfResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Who a phone number resolved to; `id: null` when nothing (or too much) matched. */
interface PhoneHit {
  id: string | null;
  object?: 'Contact' | 'Lead';
  candidates: number;
  /**
   * False when the number shared a search whose answer was cut at SOSL_LIMIT
   * and the split budget ran out: not cached, searched again (in another
   * grouping) next time.
   */
  complete?: boolean;
}

interface IdHit {
  id: string | null;
  candidates: number;
}

/** A record's lookups as resolved for one write. */
interface ResolvedLookups {
  /** Id by field (WhoId, OwnerId...), for the lookups that found one. */
  values: Record<string, string>;
  /** Fields whose lookup found nothing (left unset). */
  unresolved: string[];
  /** Fields whose id the cache served rather than the org during this write. */
  cached: string[];
}

interface Prepared {
  itemIndex: number;
  record: CrmRecord;
  omitCreateOnly: boolean;
  payload: Record<string, CrmFieldValue | { type: string }>;
  lookups: ResolvedLookups;
}

type Outcome =
  | { ok: true; id: string; created: boolean; result: JsonValue }
  | {
      ok: false;
      error: SyncError;
      result?: JsonValue;
      /** The fields the org named in its error (statusCode errors carry `fields`). */
      fields: string[];
    };

export interface SalesforceTargetOptions {
  clock?: Clock;
}

/**
 * jsforce's HttpApi with three changes: remember the raw response (status and
 * headers: Sforce-Limit-Info, Retry-After), hand every status back to us
 * instead of throwing its own error types, and refresh the session at most
 * once per request.
 */
class SalesforceHttp extends HttpApi<Schema> {
  lastResponse: HttpResponse | undefined;
  private refreshed = false;

  constructor(conn: Connection, options: { retry: { maxRetries: number }; timeout: number }) {
    super(conn, options);
    this.on('response', (response: HttpResponse) => {
      this.lastResponse = response;
    });
  }

  override isSessionExpired(response: HttpResponse): boolean {
    if (this.refreshed) return false;
    const expired = super.isSessionExpired(response);
    if (expired) this.refreshed = true;
    return expired;
  }

  override isErrorResponse(): boolean {
    return false;
  }

  override async getResponseBody(response: HttpResponse): Promise<string> {
    return response.body;
  }
}

export class SalesforceTarget implements CrmTarget {
  readonly name = 'salesforce' as const;
  readonly needs = ['salesforce'] as const;
  readonly maxBatch = COLLECTION_LIMIT;

  private readonly conn: Connection;
  private readonly mode: SalesforceAuthMode;
  private readonly version: string;
  private readonly externalIdField: string;
  private readonly clock: Clock;
  private readonly pacer: Pacer;
  private readonly timeoutMs: number;
  private readonly region;
  private readonly ttlMs: number;
  private readonly jwtKey: KeyObject | undefined;
  private granting: Promise<TokenResponse> | undefined;
  private lastGrantError: SyncError | undefined;
  private readonly phones: BatchLoader<PhoneHit>;
  private readonly users: BatchLoader<IdHit>;
  private readonly fieldLoaders = new Map<string, BatchLoader<IdHit>>();

  constructor(
    private readonly config: Config,
    private readonly logger: Logger,
    options: SalesforceTargetOptions = {},
  ) {
    const mode = salesforceAuthMode(config);
    if (mode === undefined) {
      throw new Error(
        'Salesforce needs credentials: SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET, a refresh token, a JWT key, or an instance URL + access token',
      );
    }
    this.mode = mode;
    this.clock = options.clock ?? systemClock;
    this.version = config.SALESFORCE_API_VERSION || SALESFORCE_API_VERSION_DEFAULT;
    this.externalIdField = config.SALESFORCE_EXTERNAL_ID_FIELD;
    this.timeoutMs = config.CRM_TIMEOUT_MS;
    this.region = regionOf(config.DEFAULT_PHONE_REGION);
    this.ttlMs = config.LOOKUP_CACHE_TTL_SECONDS * 1000;
    this.jwtKey = mode === 'jwt' ? loadPrivateKey(config.SALESFORCE_PRIVATE_KEY) : undefined;
    // Salesforce limits concurrent long requests, not short ones; ten in
    // flight (jsforce's own default) is plenty for 200-record upserts.
    this.pacer = new Pacer({ name: 'Salesforce', clock: this.clock, maxConcurrent: 10 });

    const usesGrant = mode !== 'access-token';
    this.conn = new Connection({
      loginUrl: config.SALESFORCE_LOGIN_URL,
      version: this.version,
      ...(config.SALESFORCE_INSTANCE_URL !== undefined ? { instanceUrl: config.SALESFORCE_INSTANCE_URL } : {}),
      ...(mode === 'access-token' && config.SALESFORCE_ACCESS_TOKEN !== undefined
        ? { accessToken: config.SALESFORCE_ACCESS_TOKEN }
        : {}),
      // Client id only when we grant: with a client id and no refresh
      // function jsforce installs a refresh-token flow we cannot satisfy.
      oauth2: {
        loginUrl: config.SALESFORCE_LOGIN_URL,
        ...(usesGrant && config.SALESFORCE_CLIENT_ID !== undefined ? { clientId: config.SALESFORCE_CLIENT_ID } : {}),
        ...(usesGrant && config.SALESFORCE_CLIENT_SECRET !== undefined
          ? { clientSecret: config.SALESFORCE_CLIENT_SECRET }
          : {}),
      },
      // Client credentials and JWT grants return no refresh token: on an
      // expired session jsforce calls this, and we simply run the grant again.
      ...(usesGrant
        ? {
            refreshFn: (_conn, callback) => {
              this.grant().then(
                (token) => callback(null, token.access_token, token),
                (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
              );
            },
          }
        : {}),
    });

    this.phones = new BatchLoader<PhoneHit>({
      crm: 'Salesforce',
      cache: new TtlCache<PhoneHit>(this.clock),
      ttlMs: (hit) => this.lookupTtl(hit),
      maxKeysPerFetch: 400,
      ready: (deadline) => this.pacer.ready(deadline),
      fetch: (keys, deadline) => this.searchPhones(keys, deadline),
      timeoutMs: this.timeoutMs,
    });
    this.users = new BatchLoader<IdHit>({
      crm: 'Salesforce',
      cache: new TtlCache<IdHit>(this.clock),
      ttlMs: (hit) => this.lookupTtl(hit),
      maxKeysPerFetch: 400,
      ready: (deadline) => this.pacer.ready(deadline),
      fetch: (keys, deadline) => this.queryIds('User', 'Email', keys, deadline, 'AND IsActive = true'),
      timeoutMs: this.timeoutMs,
    });
  }

  pausedUntil(): Date | undefined {
    return this.pacer.pausedUntil();
  }

  async write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    this.pacer.assertNotPaused();
    const deadline = new Deadline(this.timeoutMs, 'Salesforce', signal);
    try {
      return await this.writeWithin(items, deadline);
    } catch (err) {
      throw deadline.signal.aborted && !(err instanceof SyncError) ? deadline.signal.reason : transportError(err, 'Salesforce');
    } finally {
      deadline.dispose();
    }
  }

  private async writeWithin(items: WriteItem[], deadline: Deadline): Promise<WriteResult[]> {
    const mappingErrors = new Map<number, SyncError>();
    const records: Array<{ itemIndex: number; record: CrmRecord }> = [];
    items.forEach((item, itemIndex) => {
      for (const record of item.records.salesforce ?? []) {
        const problem = salesforceRecordProblem(record);
        if (problem !== undefined) mappingErrors.set(itemIndex, new SyncError('mapping', problem));
        else records.push({ itemIndex, record });
      }
    });
    const writable = records.filter((r) => !mappingErrors.has(r.itemIndex));

    const resolved = await this.resolveLookups(
      writable.map((r) => r.record),
      deadline,
    );
    const prepared = writable.map(({ itemIndex, record }) => {
      const item = items[itemIndex];
      const known = item !== undefined && item.knownIds[record.externalId] !== undefined;
      return this.prepare(itemIndex, record, resolved.get(record) ?? { values: {}, unresolved: [], cached: [] }, known);
    });

    const outcomes = await this.upsertAll(prepared, deadline);

    // A record we believed new already existed (a retry after a timeout the
    // org had applied, or ids lost): Salesforce refuses the create-only
    // fields on the update; send those records again without them.
    const retry = prepared.filter((p) => {
      const outcome = outcomes.get(p);
      return outcome !== undefined && refusedCreateOnly(outcome, p);
    });
    if (retry.length > 0) {
      const again = retry.map((p) => this.prepare(p.itemIndex, p.record, p.lookups, true));
      const second = await this.upsertAll(again, deadline);
      retry.forEach((p, i) => {
        const replacement = again[i];
        const outcome = replacement === undefined ? undefined : second.get(replacement);
        if (replacement !== undefined && outcome !== undefined) {
          outcomes.delete(p);
          outcomes.set(replacement, outcome);
          prepared[prepared.indexOf(p)] = replacement;
        }
      });
    }
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      if (outcome !== undefined && !outcome.ok) outcomes.set(p, this.unlessStaleLookup(p, outcome));
    }

    const byItem = groupByItem(prepared);
    return items.map((item, itemIndex) => {
      const mappingError = mappingErrors.get(itemIndex);
      if (mappingError !== undefined) return { ok: false, error: mappingError };
      return this.resultFor(item, byItem.get(itemIndex) ?? [], outcomes);
    });
  }

  private resultFor(item: WriteItem, mine: Prepared[], outcomes: Map<Prepared, Outcome>): WriteResult {
    const sent = toJson({ crm: 'salesforce', records: mine.map((p) => this.sentRecord(p)) });
    const errors: SyncError[] = [];
    const ids: Record<string, string> = {};
    const responses: JsonValue[] = [];
    let created = false;
    const activity = mine.find((p) => p.record.kind === 'activity') ?? mine[0];
    for (const p of mine) {
      const outcome = outcomes.get(p);
      if (outcome === undefined) {
        errors.push(new SyncError('transient', 'Salesforce returned no result for this record'));
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
    if (mine.length === 0) this.logger.debug({ externalId: item.externalId }, 'no Salesforce records for this call');
    return { ok: true, ids, created, sent, response: responses };
  }

  private sentRecord(p: Prepared): SentRecord {
    return {
      kind: p.record.kind,
      object: p.record.object,
      externalId: p.record.externalId,
      operation: 'upsert',
      request: `PATCH ${this.collectionPath(p.record.object)}`,
      payload: p.payload as { [key: string]: JsonValue },
      ...(p.lookups.unresolved.length > 0 ? { unresolved: p.lookups.unresolved } : {}),
    };
  }

  private prepare(
    itemIndex: number,
    record: CrmRecord,
    lookups: ResolvedLookups,
    omitCreateOnly: boolean,
  ): Prepared {
    return {
      itemIndex,
      record,
      omitCreateOnly,
      payload: buildSalesforceRecord(record, this.externalIdField, lookups.values, omitCreateOnly),
      lookups,
    };
  }

  /**
   * The org refused an id one of our lookups produced (INVALID_CROSS_REFERENCE_KEY
   * on WhoId/OwnerId/WhatId: a Contact merged or deleted, a User
   * deactivated). An id the cache served is retried soon with a fresh
   * lookup, one looked up in this write fails for good with the org's
   * message (see unlessStaleLookup). An id the mapping gave (`by: id`) is not
   * ours to doubt.
   */
  private unlessStaleLookup(p: Prepared, outcome: Extract<Outcome, { ok: false }>): Outcome {
    if (outcome.error.crmCode !== 'INVALID_CROSS_REFERENCE_KEY') return outcome;
    const refused: RefusedLookup[] = Object.entries(p.record.lookups).flatMap(([field, lookup]) => {
      const value = p.payload[field];
      if (lookup.by === 'id' || p.lookups.unresolved.includes(field) || typeof value !== 'string') return [];
      if (!outcome.fields.includes(field) && !outcome.error.message.includes(value)) return [];
      return [{ name: field, cached: p.lookups.cached.includes(field), forget: () => this.forgetLookup(lookup) }];
    });
    if (refused.length === 0) return outcome;
    return { ...outcome, error: unlessStaleLookup(outcome.error, refused, this.clock.now()) };
  }

  private forgetLookup(lookup: LookupRequest): void {
    if (lookup.by === 'phone') this.phones.forget(lookup.value);
    else if (lookup.by === 'email') this.users.forget(lookup.value.trim().toLowerCase());
    else if (lookup.by === 'field') this.fieldLoader(`${lookup.object}.${lookup.field}`).forget(lookup.value.toLowerCase());
  }

  private lookupTtl(hit: PhoneHit | IdHit): number {
    if ('complete' in hit && hit.complete === false) return 0;
    return lookupTtlMs(hit.id !== null, this.ttlMs);
  }

  // ---------------------------------------------------------------- writes

  private collectionPath(object: string): string {
    return salesforceCollectionPath(this.version, object, this.externalIdField);
  }

  private async upsertAll(prepared: Prepared[], deadline: Deadline): Promise<Map<Prepared, Outcome>> {
    const byObject = new Map<string, Prepared[]>();
    for (const p of prepared) {
      const list = byObject.get(p.record.object) ?? [];
      list.push(p);
      byObject.set(p.record.object, list);
    }
    const chunks: Prepared[][] = [];
    for (const list of byObject.values()) {
      for (let i = 0; i < list.length; i += COLLECTION_LIMIT) chunks.push(list.slice(i, i + COLLECTION_LIMIT));
    }
    const outcomes = new Map<Prepared, Outcome>();
    const answers = await Promise.all(
      chunks.map((chunk) =>
        sendIsolating<Prepared, Outcome>(chunk, {
          send: (records) => this.upsertRequest(records, deadline),
          failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null, fields: [] }),
          maxExtraRequests: isolationBudget(chunk.length),
        }),
      ),
    );
    chunks.forEach((chunk, i) => {
      chunk.forEach((p, j) => {
        const outcome = answers[i]?.[j];
        if (outcome !== undefined) outcomes.set(p, outcome);
      });
    });
    return outcomes;
  }

  /**
   * One sObject Collections upsert (allOrNone false: each record succeeds or
   * fails alone). A rejection of the whole request is read for whom it
   * concerns (see isolate.ts): a missing object or External ID field concerns
   * every record; "No such column 'X'" the records that carry X.
   */
  private async upsertRequest(chunk: Prepared[], deadline: Deadline): Promise<BatchAttempt<Prepared, Outcome>> {
    const first = chunk[0];
    if (first === undefined) return { accepted: true, outcomes: [] };
    const response = await this.call(
      'PATCH',
      this.collectionPath(first.record.object),
      { allOrNone: false, records: chunk.map((p) => p.payload) },
      deadline,
    );
    if (response.status === 200 && Array.isArray(response.body)) {
      const results: unknown[] = response.body;
      return { accepted: true, outcomes: chunk.map((_, i) => this.recordOutcome(results[i])) };
    }
    return { accepted: false, ...this.rejection(response, chunk) };
  }

  private rejection(response: SfResponse, chunk: Prepared[]): { error: SyncError; culprits: ReadonlySet<Prepared> | undefined } {
    const { code, message } = firstError(response.body);
    const options = { httpStatus: response.status, crmCode: code, crmResponse: asJson(response.body) };
    const text = `${code ?? `HTTP ${response.status}`}: ${message ?? 'request rejected'}`;
    if (response.status === 404 || (code !== undefined && SHARED_REQUEST_CODES.has(code))) {
      const hint =
        response.status === 404
          ? ` (is ${this.externalIdField} an External ID field on ${chunk[0]?.record.object ?? 'the object'}, visible to the integration user? See SALESFORCE_EXTERNAL_ID_FIELD)`
          : '';
      return { error: new SyncError('mapping', `${text}${hint}`, options), culprits: new Set(chunk) };
    }
    const column = code === 'INVALID_FIELD' && message !== undefined ? /No such column '([^']+)'/i.exec(message)?.[1]?.toLowerCase() : undefined;
    if (column !== undefined) {
      const carriers = chunk.filter((p) => Object.keys(p.payload).some((name) => name.toLowerCase() === column));
      if (carriers.length > 0) return { error: new SyncError('mapping', text, options), culprits: new Set(carriers) };
    }
    return { error: new SyncError('permanent', text, options), culprits: undefined };
  }

  private recordOutcome(result: unknown): Outcome {
    if (!isRecord(result)) {
      return { ok: false, error: new SyncError('transient', 'Salesforce answered without a result for this record'), fields: [] };
    }
    const json = asJson(result) ?? null;
    const id = stringField(result, 'id');
    if (result['success'] === true && id !== undefined) {
      return { ok: true, id, created: result['created'] === true, result: json };
    }
    const errors = Array.isArray(result['errors']) ? result['errors'] : [];
    const first: unknown = errors[0];
    const code = stringField(first, 'statusCode') ?? 'UNKNOWN_ERROR';
    const message = stringField(first, 'message') ?? 'record rejected';
    const fields = isRecord(first) && Array.isArray(first['fields']) ? first['fields'].filter((f) => typeof f === 'string') : [];
    // DUPLICATE_VALUE on our external id field is two writers creating the
    // same call at once; the retry finds the record and updates it.
    const raced = code === 'DUPLICATE_VALUE' && message.includes(this.externalIdField);
    const kind = TRANSIENT_RECORD_CODES.has(code) || raced ? 'transient' : 'permanent';
    return {
      ok: false,
      result: json,
      fields,
      error: new SyncError(kind, `${code}: ${message}${fields.length > 0 ? ` (${fields.join(', ')})` : ''}`, {
        httpStatus: 200,
        crmCode: code,
        crmResponse: json,
      }),
    };
  }

  // --------------------------------------------------------------- lookups

  private async resolveLookups(
    records: CrmRecord[],
    deadline: Deadline,
  ): Promise<Map<CrmRecord, ResolvedLookups>> {
    const phones = new Set<string>();
    const emails = new Set<string>();
    const byField = new Map<string, Set<string>>();
    for (const record of records) {
      for (const lookup of Object.values(record.lookups)) {
        if (lookup.by === 'phone' && isE164(lookup.value)) phones.add(lookup.value);
        else if (lookup.by === 'email' && lookup.value.includes('@')) emails.add(lookup.value.trim().toLowerCase());
        else if (lookup.by === 'field' && API_NAME.test(lookup.object) && API_NAME.test(lookup.field)) {
          const key = `${lookup.object}.${lookup.field}`;
          const values = byField.get(key) ?? new Set<string>();
          values.add(lookup.value.toLowerCase());
          byField.set(key, values);
        }
      }
    }
    const [phoneHits, userHits, fieldHits] = await Promise.all([
      tolerateRefusedLookup(this.phones.loadMany(phones, deadline), this.logger, 'Salesforce', 'phone'),
      tolerateRefusedLookup(this.users.loadMany(emails, deadline), this.logger, 'Salesforce', 'user'),
      Promise.all(
        [...byField].map(async ([key, values]) => {
          const hits = await tolerateRefusedLookup(this.fieldLoader(key).loadMany(values, deadline), this.logger, 'Salesforce', 'field');
          return [key, hits] as const;
        }),
      ).then((entries) => new Map(entries)),
    ]);

    /** The loader's answer a lookup reads, and its key there (none for an id the mapping gave). */
    const sourceOf = (lookup: LookupRequest): { hits: Loaded<PhoneHit | IdHit> | undefined; key: string } | undefined => {
      switch (lookup.by) {
        case 'id':
          return undefined;
        case 'phone':
          return { hits: phoneHits, key: lookup.value };
        case 'email':
          return { hits: userHits, key: lookup.value.trim().toLowerCase() };
        case 'field':
          return { hits: fieldHits.get(`${lookup.object}.${lookup.field}`), key: lookup.value.toLowerCase() };
      }
    };

    const out = new Map<CrmRecord, ResolvedLookups>();
    for (const record of records) {
      const resolved: ResolvedLookups = { values: {}, unresolved: [], cached: [] };
      for (const [field, lookup] of Object.entries(record.lookups)) {
        const source = sourceOf(lookup);
        const id = lookup.by === 'id' ? lookup.value : source?.hits?.values.get(source.key)?.id;
        if (typeof id !== 'string' || id === '') {
          resolved.unresolved.push(field);
          continue;
        }
        resolved.values[field] = id;
        if (source?.hits?.cached.has(source.key) === true) resolved.cached.push(field);
      }
      out.set(record, resolved);
    }
    return out;
  }

  private fieldLoader(key: string): BatchLoader<IdHit> {
    let loader = this.fieldLoaders.get(key);
    if (loader === undefined) {
      const [object = '', field = ''] = key.split('.');
      loader = new BatchLoader<IdHit>({
        crm: 'Salesforce',
        cache: new TtlCache<IdHit>(this.clock),
        ttlMs: (hit) => this.lookupTtl(hit),
        maxKeysPerFetch: 400,
        ready: (deadline) => this.pacer.ready(deadline),
        fetch: (keys, deadline) => this.queryIds(object, field, keys, deadline, ''),
        timeoutMs: this.timeoutMs,
      });
      this.fieldLoaders.set(key, loader);
    }
    return loader;
  }

  /**
   * Contacts and Leads by phone, many numbers per request: one SOSL search
   * ORs the digit forms of every number (each chunk under SOSL's 4,000
   * characters), then each candidate's stored numbers are parsed and compared
   * with the E.164 we look for. Contact before Lead; several matches of the
   * same kind are ambiguous and link nothing unless SALESFORCE_AMBIGUOUS_MATCH
   * is "first" (oldest record, i.e. lowest Id, wins: stable over time).
   */
  private async searchPhones(keys: string[], deadline: Deadline): Promise<Map<string, PhoneHit>> {
    const chunks: string[][] = [];
    let current: string[] = [];
    let length = 0;
    // Each number's digit forms, worked out once (a parse and a format each).
    const digits = new Map(keys.map((key) => [key, searchDigits(key)]));
    for (const key of keys) {
      const termLength = (digits.get(key) ?? []).reduce((sum, t) => sum + t.length + 6, 0);
      if (current.length > 0 && length + termLength > SOSL_SEARCH_MAX_CHARS) {
        chunks.push(current);
        current = [];
        length = 0;
      }
      current.push(key);
      length += termLength;
    }
    if (current.length > 0) chunks.push(current);

    const out = new Map<string, PhoneHit>();
    const splits = { left: SOSL_SPLIT_BUDGET };
    await Promise.all(chunks.map((chunk) => this.searchPhoneChunk(chunk, digits, deadline, splits, out)));
    return out;
  }

  /**
   * One SOSL search. An answer that reaches SOSL_LIMIT rows may have left
   * out the very record a number needs (popular digits, look-alikes abroad),
   * so the numbers are split and searched again. A number still cut off is
   * answered "not linked": cached like "not found" when it was alone in its
   * search (it would fill the rows again), not cached when the split budget
   * ran out first.
   */
  private async searchPhoneChunk(
    chunk: string[],
    digits: ReadonlyMap<string, string[]>,
    deadline: Deadline,
    splits: { left: number },
    out: Map<string, PhoneHit>,
  ): Promise<void> {
    const terms = [...new Set(chunk.flatMap((key) => digits.get(key) ?? []))].map((t) => `"${escapeSosl(t)}"`);
    const sosl =
      `FIND {${terms.join(' OR ')}} IN PHONE FIELDS RETURNING ` +
      `Contact(Id, ${CONTACT_PHONE_FIELDS.join(', ')}), ` +
      `Lead(Id, ${LEAD_PHONE_FIELDS.join(', ')} WHERE IsConverted = false) LIMIT ${SOSL_LIMIT}`;
    const response = await this.call('GET', `/services/data/v${this.version}/search?q=${encodeURIComponent(sosl)}`, undefined, deadline);
    if (response.status !== 200) throw this.requestError(response);
    const found = isRecord(response.body) && Array.isArray(response.body['searchRecords']) ? response.body['searchRecords'] : [];
    const truncated = found.length >= SOSL_LIMIT;
    if (truncated && chunk.length > 1 && splits.left >= 2) {
      splits.left -= 2;
      const middle = Math.ceil(chunk.length / 2);
      await Promise.all([
        this.searchPhoneChunk(chunk.slice(0, middle), digits, deadline, splits, out),
        this.searchPhoneChunk(chunk.slice(middle), digits, deadline, splits, out),
      ]);
      return;
    }
    // Alone in its search, a number that still fills SOSL_LIMIT (a shared
    // switchboard number, thousands of look-alikes) would fill it again next
    // time: its "unlinked" answer is cached like "not found", so it costs a
    // 2,000-row search at most once a minute, not on every write. Numbers
    // left together when the split budget ran out are searched again (in
    // other groupings) next time.
    const alone = chunk.length === 1;
    if (truncated) {
      this.logger.warn(
        { numbers: chunk.length, rows: found.length },
        alone
          ? 'Salesforce phone search for one number reached its row limit; the number is left unlinked for a minute'
          : 'Salesforce phone search reached its row limit; those numbers are left unlinked this time',
      );
    }
    // Candidates by each E.164 they hold, so matching is one lookup a number
    // rather than a scan of up to SOSL_LIMIT rows for each of 200 numbers.
    const byNumber = new Map<string, Array<{ id: string; type: 'Contact' | 'Lead' }>>();
    for (const rec of found) {
      if (!isRecord(rec)) continue;
      const type = stringField(rec['attributes'], 'type');
      const id = stringField(rec, 'Id');
      if (id === undefined || (type !== 'Contact' && type !== 'Lead')) continue;
      const fields = type === 'Contact' ? CONTACT_PHONE_FIELDS : LEAD_PHONE_FIELDS;
      const numbers = new Set(fields.map((f) => toE164(stringField(rec, f), this.region)).filter((n) => n !== undefined));
      for (const number of numbers) {
        const list = byNumber.get(number);
        if (list === undefined) byNumber.set(number, [{ id, type }]);
        else list.push({ id, type });
      }
    }
    for (const key of chunk) {
      if (truncated) {
        // Matches may be missing: no link can be trusted.
        out.set(key, alone ? { id: null, candidates: 0 } : { id: null, candidates: 0, complete: false });
        continue;
      }
      const matches = byNumber.get(key) ?? [];
      const contacts = matches.filter((c) => c.type === 'Contact');
      const pool = contacts.length > 0 ? contacts : matches;
      out.set(key, this.pick(pool.map((c) => ({ id: c.id, object: c.type }))));
    }
  }

  private pick(pool: Array<{ id: string; object: 'Contact' | 'Lead' }>): PhoneHit {
    const sorted = [...pool].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const first = sorted[0];
    if (first === undefined) return { id: null, candidates: 0 };
    if (sorted.length > 1 && this.config.SALESFORCE_AMBIGUOUS_MATCH === 'none') return { id: null, candidates: sorted.length };
    return { id: first.id, object: first.object, candidates: sorted.length };
  }

  /** `SELECT Id, field FROM object WHERE field IN (...)`, many values per request; values compared case-insensitively, as SOQL does. */
  private async queryIds(
    object: string,
    field: string,
    keys: string[],
    deadline: Deadline,
    extraWhere: string,
  ): Promise<Map<string, IdHit>> {
    const matches = new Map<string, string[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < keys.length; i += SOQL_IN_CHUNK) {
      const chunk = keys.slice(i, i + SOQL_IN_CHUNK);
      const soql = `SELECT Id, ${field} FROM ${object} WHERE ${field} IN (${chunk.map(soqlString).join(', ')}) ${extraWhere} ORDER BY Id`.replace(/\s+/g, ' ');
      let path: string | undefined = `/services/data/v${this.version}/query?q=${encodeURIComponent(soql)}`;
      while (path !== undefined) {
        const response = await this.call('GET', path, undefined, deadline);
        if (response.status !== 200) throw this.requestError(response);
        const body = response.body;
        const records = isRecord(body) && Array.isArray(body['records']) ? body['records'] : [];
        for (const rec of records) {
          const id = stringField(rec, 'Id');
          const value = stringField(rec, field)?.toLowerCase();
          if (id !== undefined && value !== undefined) matches.get(value)?.push(id);
        }
        const next = isRecord(body) && body['done'] === false ? stringField(body, 'nextRecordsUrl') : undefined;
        path = next;
      }
    }
    const out = new Map<string, IdHit>();
    for (const [key, ids] of matches) {
      const sorted = [...new Set(ids)].sort();
      const id = sorted.length === 1 || (sorted.length > 1 && this.config.SALESFORCE_AMBIGUOUS_MATCH === 'first') ? (sorted[0] ?? null) : null;
      out.set(key, { id, candidates: sorted.length });
    }
    return out;
  }

  // ------------------------------------------------------- session & HTTP

  private async ensureSession(deadline: Deadline): Promise<void> {
    if (this.mode === 'access-token' || this.conn.accessToken) return;
    await deadline.race(this.grant());
  }

  /** Runs the configured grant; concurrent callers share one token request. */
  private grant(): Promise<TokenResponse> {
    if (this.granting !== undefined) return this.granting;
    const granting = this.runGrant().finally(() => {
      this.granting = undefined;
    });
    this.granting = granting;
    return granting;
  }

  private async runGrant(): Promise<TokenResponse> {
    const oauth2 = this.conn.oauth2;
    let token: TokenResponse;
    try {
      if (this.mode === 'refresh-token') {
        token = await oauth2.refreshToken(this.config.SALESFORCE_REFRESH_TOKEN ?? '');
      } else if (this.mode === 'jwt') {
        const assertion = signJwt({
          clientId: this.config.SALESFORCE_CLIENT_ID ?? '',
          username: this.config.SALESFORCE_USERNAME ?? '',
          audience: jwtAudience(this.config.SALESFORCE_LOGIN_URL),
          key: this.jwtKey,
        });
        token = await oauth2.requestToken({ grant_type: JWT_GRANT, assertion });
      } else {
        token = await oauth2.requestToken({ grant_type: 'client_credentials' });
      }
    } catch (err) {
      const error = grantError(err, this.mode);
      this.lastGrantError = error;
      this.logger.warn({ authMode: this.mode, crmCode: error.crmCode, kind: error.kind }, 'Salesforce token request failed');
      throw error;
    }
    this.lastGrantError = undefined;
    this.conn.instanceUrl = token.instance_url || this.config.SALESFORCE_INSTANCE_URL || this.conn.instanceUrl;
    this.conn.accessToken = token.access_token;
    this.logger.info({ authMode: this.mode }, 'Salesforce session established');
    return token;
  }

  /**
   * One REST request, paced, within the write's deadline. Failures of the
   * whole request (session, quota, rate, server) are thrown as SyncError;
   * other answers (200, 400, 404) are returned for the caller to read.
   */
  private async call(method: 'GET' | 'PATCH', path: string, body: unknown, deadline: Deadline): Promise<SfResponse> {
    await this.ensureSession(deadline);
    const release = await this.pacer.acquire(deadline);
    try {
      const http = new SalesforceHttp(this.conn, {
        retry: { maxRetries: 0 },
        // Aborts the underlying fetch shortly after our deadline has fired
        // (the deadline, not jsforce's "Request Timeout", reports it).
        timeout: deadline.remainingMs() + 1_000,
      });
      const request: HttpRequest = {
        method,
        url: `${this.conn.instanceUrl}${path}`,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      };
      try {
        await deadline.race(Promise.resolve(http.request<string>(request)));
      } catch (err) {
        // jsforce's own timeout fires with ours; report it as the deadline.
        if (deadline.signal.aborted) throw deadline.signal.reason;
        if (err instanceof SyncError) throw err;
        if (err instanceof Error && err.message.startsWith('Unable to refresh session') && this.lastGrantError !== undefined) {
          throw this.lastGrantError;
        }
        throw transportError(err, 'Salesforce');
      }
      const raw = http.lastResponse;
      if (raw === undefined) throw new SyncError('transient', 'Salesforce sent no response');
      const response: SfResponse = { status: raw.statusCode, headers: raw.headers, body: parseJsonBody(raw.body) };
      this.observe(response);
      this.throwIfRequestFailed(response);
      return response;
    } finally {
      release();
    }
  }

  /** Sforce-Limit-Info: api-usage=used/limit over the org's rolling 24 hours. */
  private observe(response: SfResponse): void {
    const info = response.headers['sforce-limit-info'];
    const usage = info === undefined ? null : /api-usage=(\d+)\/(\d+)/.exec(info);
    if (usage === null) return;
    const used = Number(usage[1]);
    const limit = Number(usage[2]);
    this.pacer.observeBudget(used, limit, DAY_MS, () => {
      this.pauseForQuota(`Salesforce API requests for the last 24 hours are spent (${used}/${limit})`, undefined, undefined);
    });
  }

  private pauseForQuota(message: string, httpStatus: number | undefined, crmResponse: JsonValue | undefined): SyncError {
    const until = this.clock.now() + QUOTA_PROBE_MS;
    const make = (retryAt: Date) =>
      new SyncError('quota', message, { retryAt, httpStatus, crmResponse, crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    this.pacer.pauseForQuota(until, make);
    this.logger.warn({ until: new Date(until).toISOString() }, 'Salesforce quota spent; pausing calls');
    return make(new Date(until));
  }

  private throwIfRequestFailed(response: SfResponse): void {
    const { status } = response;
    if (status < 300) return;
    const { code, message } = firstError(response.body);
    const crmResponse = asJson(response.body);
    const now = this.clock.now();
    const retryAfter = parseRetryAfter(response.headers['retry-after'], now);
    if (status === 401) {
      throw new SyncError('auth', `Salesforce refused the session: ${code ?? status}: ${message ?? ''}`.trim(), {
        httpStatus: status,
        crmCode: code,
        crmResponse,
      });
    }
    if (code === 'REQUEST_LIMIT_EXCEEDED') {
      // The same code covers the org's daily TotalRequests (a quota: stop until
      // capacity returns) and ConcurrentPerOrgLongTxn (too many long requests
      // right now: transient).
      if (message !== undefined && /concurren/i.test(message)) {
        const until = retryAfter ?? now + 5_000;
        this.pacer.block(until, 'concurrent request limit');
        throw new SyncError('transient', `REQUEST_LIMIT_EXCEEDED: ${message}`, {
          httpStatus: status,
          crmCode: code,
          crmResponse,
          retryAt: new Date(until),
        });
      }
      throw this.pauseForQuota(`REQUEST_LIMIT_EXCEEDED: ${message ?? 'TotalRequests Limit exceeded.'}`, status, crmResponse);
    }
    if (status === 429 || status === 408 || status >= 500 || (code !== undefined && TRANSIENT_CODES.has(code))) {
      if (retryAfter !== undefined) this.pacer.block(retryAfter, `HTTP ${status} Retry-After`);
      throw new SyncError('transient', `Salesforce answered HTTP ${status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? `: ${message}` : ''}`, {
        httpStatus: status,
        crmCode: code,
        crmResponse,
        retryAt: retryAfter === undefined ? undefined : new Date(retryAfter),
      });
    }
    if (status === 403) {
      throw new SyncError('auth', `Salesforce refused access: ${code ?? status}: ${message ?? ''}`.trim(), {
        httpStatus: status,
        crmCode: code,
        crmResponse,
      });
    }
  }

  /** A 4xx answer to one request (not thrown by call()): a rejection of what we sent. */
  private requestError(response: SfResponse): SyncError {
    const { code, message } = firstError(response.body);
    return new SyncError('permanent', `${code ?? `HTTP ${response.status}`}: ${message ?? 'request rejected'}`, {
      httpStatus: response.status,
      crmCode: code,
      crmResponse: asJson(response.body),
    });
  }
}

// ------------------------------------------------------------------ helpers

/**
 * Whether the org refused a create-only field of a record we sent as new
 * (INVALID_FIELD_FOR_INSERT_UPDATE on an update). The fields come from the
 * error's own `fields` list (its message only as a fallback); only fields
 * known to be create-only are dropped on the resend: a field the integration
 * user may not edit at all must keep failing with the org's message, not
 * silently disappear from every Task.
 */
function refusedCreateOnly(outcome: Outcome, p: Prepared): boolean {
  if (outcome.ok || p.omitCreateOnly || outcome.error.crmCode !== 'INVALID_FIELD_FOR_INSERT_UPDATE') return false;
  const createOnly = salesforceCreateOnly(p.record).filter((field) => field in p.payload);
  const named = outcome.fields.length > 0 ? outcome.fields : createOnly.filter((field) => outcome.error.message.includes(field));
  return named.some((field) => createOnly.includes(field));
}

function firstError(body: unknown): { code: string | undefined; message: string | undefined } {
  const first: unknown = Array.isArray(body) ? body[0] : body;
  return {
    code: stringField(first, 'errorCode') ?? stringField(first, 'error'),
    message: stringField(first, 'message') ?? stringField(first, 'error_description'),
  };
}

/** SOSL reserved characters: ? & | ! { } [ ] ( ) ^ ~ * : \ " ' + - */
export function escapeSosl(term: string): string {
  return term.replace(/[?&|!{}[\]()^~*:\\"'+-]/g, (c) => `\\${c}`);
}

export function soqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function grantError(err: unknown, mode: SalesforceAuthMode): SyncError {
  if (err instanceof SyncError) return err;
  const name = err instanceof Error ? err.name : '';
  const message = err instanceof Error ? err.message : String(err);
  // jsforce names a token-endpoint refusal after its OAuth error
  // (invalid_grant, invalid_client...) or ERROR_HTTP_<status>.
  if (name.startsWith('invalid_') || name === 'unauthorized_client' || name === 'unsupported_grant_type' || name === 'inactive_user') {
    return new SyncError('auth', `Salesforce refused the ${mode} grant: ${name}: ${message}`, { crmCode: name });
  }
  const status = /^ERROR_HTTP_(\d+)$/.exec(name);
  if (status !== null && Number(status[1]) < 500) {
    return new SyncError('auth', `Salesforce token endpoint answered HTTP ${status[1]}`, {
      crmCode: name,
      httpStatus: Number(status[1]),
    });
  }
  return transportError(err, 'Salesforce');
}

function loadPrivateKey(value: string | undefined): KeyObject {
  if (value === undefined) throw new Error('SALESFORCE_PRIVATE_KEY is required for the JWT bearer flow');
  const pem = value.includes('-----BEGIN') ? value.replace(/\\n/g, '\n') : readFileSync(value, 'utf8');
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new Error(
      `SALESFORCE_PRIVATE_KEY is neither a PEM private key nor the path of one (${err instanceof Error ? err.message : String(err)})`,
    );
  }
}

/**
 * The JWT's audience is the login server, not the My Domain host the token is
 * requested from: login.salesforce.com for production, test.salesforce.com
 * for sandboxes. Anything else (a fake, a proxy) gets its own origin.
 */
export function jwtAudience(loginUrl: string): string {
  const url = new URL(loginUrl);
  const host = url.hostname;
  if (host === 'test.salesforce.com' || host.endsWith('.sandbox.my.salesforce.com')) return 'https://test.salesforce.com';
  if (host.endsWith('.salesforce.com')) return 'https://login.salesforce.com';
  return url.origin;
}

function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

function signJwt(options: { clientId: string; username: string; audience: string; key: KeyObject | undefined }): string {
  if (options.key === undefined) throw new SyncError('auth', 'no private key for the JWT bearer flow');
  const header = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
  // Real time on purpose: Salesforce checks `exp` against its own clock.
  const claims = base64url(
    JSON.stringify({
      iss: options.clientId,
      sub: options.username,
      aud: options.audience,
      exp: Math.floor(Date.now() / 1000) + 180,
    }),
  );
  const signature = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(options.key);
  return `${header}.${claims}.${base64url(signature)}`;
}
