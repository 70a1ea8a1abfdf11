import type { Config } from '../../config';
import type { LookupRequest } from '../../core/crm-record';
import { isE164, regionOf, searchDigits, toE164 } from '../../core/phone';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { BatchLoader, loaderFor, lookupTtlMs, type IdHit } from '../engine/batch-loader';
import { isRecord, stringField } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import type { Pacer } from '../engine/pacer';
import type { LookupRoute, LookupRoutes } from '../engine/resolve-lookups';
import { API_NAME } from './salesforce-payload';
import { TtlCache } from '../engine/ttl-cache';
import { requestError, type SalesforceClient } from './salesforce-client';

/**
 * Salesforce lookups: Contacts and Leads by phone (SOSL), active Users by
 * email and any object by a field (SOQL), each through a batch loader shared
 * by every write in flight.
 */

/** SOSL drops logical operators past 4,000 characters of search text; stay under it. */
const SOSL_SEARCH_MAX_CHARS = 3_900;
/** The most rows one SOSL search returns; an answer that reaches it may have left matches out. */
const SOSL_LIMIT = 2_000;
/** Extra searches allowed to split a batch of numbers whose answer reached SOSL_LIMIT. */
const SOSL_SPLIT_BUDGET = 8;
const SOQL_IN_CHUNK = 100;

const CONTACT_PHONE_FIELDS = ['Phone', 'MobilePhone', 'HomePhone', 'OtherPhone', 'AssistantPhone'] as const;
const LEAD_PHONE_FIELDS = ['Phone', 'MobilePhone'] as const;

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

export class SalesforceLookups implements LookupRoutes {
  readonly crm = 'Salesforce';
  readonly fixed;
  private readonly region;
  private readonly ttlMs: number;
  private readonly phones: BatchLoader<PhoneHit>;
  private readonly users: BatchLoader<IdHit>;
  private readonly fieldLoaders = new Map<string, BatchLoader<IdHit>>();

  constructor(
    private readonly config: Config,
    readonly logger: Logger,
    private readonly client: SalesforceClient,
    private readonly pacer: Pacer,
    private readonly clock: Clock,
    private readonly version: string,
  ) {
    this.region = regionOf(config.DEFAULT_PHONE_REGION);
    this.ttlMs = config.LOOKUP_CACHE_TTL_SECONDS * 1000;
    this.phones = this.loader<PhoneHit>((keys, deadline) => this.searchPhones(keys, deadline));
    this.users = this.loader<IdHit>((keys, deadline) => this.queryIds('User', 'Email', keys, deadline, 'AND IsActive = true'));
    this.fixed = [
      [this.phones, 'phone'],
      [this.users, 'user'],
    ] as const;
  }

  route(_name: string, lookup: LookupRequest): LookupRoute | undefined {
    switch (lookup.by) {
      case 'id':
        return undefined;
      case 'phone':
        return { source: this.phones, key: lookup.value, what: 'phone', fetch: isE164(lookup.value), read: true };
      case 'email':
        return { source: this.users, key: lookup.value.trim().toLowerCase(), what: 'user', fetch: lookup.value.includes('@'), read: true };
      case 'field': {
        const valid = API_NAME.test(lookup.object) && API_NAME.test(lookup.field);
        return { source: this.fieldLoader(`${lookup.object}.${lookup.field}`), key: lookup.value.toLowerCase(), what: 'field', fetch: valid, read: true };
      }
    }
  }

  private loader<H extends PhoneHit | IdHit>(fetch: (keys: string[], deadline: Deadline) => Promise<Map<string, H>>): BatchLoader<H> {
    return new BatchLoader<H>({
      crm: 'Salesforce',
      cache: new TtlCache<H>(this.clock),
      ttlMs: (hit) => this.lookupTtl(hit),
      maxKeysPerFetch: 400,
      ready: (deadline) => this.pacer.ready(deadline),
      fetch,
      timeoutMs: this.config.CRM_TIMEOUT_MS,
    });
  }

  private lookupTtl(hit: PhoneHit | IdHit): number {
    if ('complete' in hit && hit.complete === false) return 0;
    return lookupTtlMs(hit.id !== null, this.ttlMs);
  }

  private fieldLoader(key: string): BatchLoader<IdHit> {
    return loaderFor(this.fieldLoaders, key, () => {
      const [object = '', field = ''] = key.split('.');
      return this.loader<IdHit>((keys, deadline) => this.queryIds(object, field, keys, deadline, ''));
    });
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
   * out the very record a number needs, so the numbers are split and searched
   * again. A number still cut off is answered "not linked": cached like "not
   * found" when it was alone in its search (it would fill the rows again),
   * not cached when the split budget ran out first.
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
    const response = await this.client.call('GET', `/services/data/v${this.version}/search?q=${encodeURIComponent(sosl)}`, undefined, deadline);
    if (response.status !== 200) throw requestError(response);
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
    // switchboard number) would fill it again next time: its "unlinked"
    // answer is cached like "not found". Numbers left together when the split
    // budget ran out are searched again (in other groupings) next time.
    const alone = chunk.length === 1;
    if (truncated) {
      this.logger.warn(
        { numbers: chunk.length, rows: found.length },
        alone
          ? 'Salesforce phone search for one number reached its row limit; the number is left unlinked for a minute'
          : 'Salesforce phone search reached its row limit; those numbers are left unlinked this time',
      );
    }
    // Candidates by each E.164 they hold: one lookup a number, not a scan of every row.
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
  private async queryIds(object: string, field: string, keys: string[], deadline: Deadline, extraWhere: string): Promise<Map<string, IdHit>> {
    const matches = new Map<string, string[]>(keys.map((k) => [k, []]));
    for (let i = 0; i < keys.length; i += SOQL_IN_CHUNK) {
      const chunk = keys.slice(i, i + SOQL_IN_CHUNK);
      const soql = `SELECT Id, ${field} FROM ${object} WHERE ${field} IN (${chunk.map(soqlString).join(', ')}) ${extraWhere} ORDER BY Id`.replace(/\s+/g, ' ');
      let path: string | undefined = `/services/data/v${this.version}/query?q=${encodeURIComponent(soql)}`;
      while (path !== undefined) {
        const response = await this.client.call('GET', path, undefined, deadline);
        if (response.status !== 200) throw requestError(response);
        const body = response.body;
        const records = isRecord(body) && Array.isArray(body['records']) ? body['records'] : [];
        for (const rec of records) {
          const id = stringField(rec, 'Id');
          const value = stringField(rec, field)?.toLowerCase();
          if (id !== undefined && value !== undefined) matches.get(value)?.push(id);
        }
        path = isRecord(body) && body['done'] === false ? stringField(body, 'nextRecordsUrl') : undefined;
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
}

/** SOSL reserved characters: ? & | ! { } [ ] ( ) ^ ~ * : \ " ' + - */
export function escapeSosl(term: string): string {
  return term.replace(/[?&|!{}[\]()^~*:\\"'+-]/g, (c) => `\\${c}`);
}

export function soqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
