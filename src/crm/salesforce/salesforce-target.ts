import type { Config } from '../../config';
import type { CrmRecord } from '../../core/crm-record';
import type { SyncError } from '../../core/errors';
import { systemClock, type Clock } from '../../core/time';
import type { Logger } from '../../log';
import type { RefusedLookup } from '../engine/batch-loader';
import type { Deadline } from '../engine/deadline';
import { Pacer } from '../engine/pacer';
import { forgetLookup, resolveLookups, type ResolvedLookup } from '../engine/resolve-lookups';
import { sendChunks } from '../engine/send-chunks';
import type { SentRecord } from '../engine/sent-record';
import { CRM_TARGET_NEEDS } from '../../core/crm-targets';
import type { CrmTarget, WriteItem, WriteResult } from '../engine/target-contract';
import { CrmWriteEngine, type CrmDriver, type FailedOutcome, type WriteContext } from '../engine/write-engine';
import { SalesforceClient } from './salesforce-client';
import { SalesforceLookups } from './salesforce-lookups';
import { SALESFORCE_API_VERSION_DEFAULT, buildSalesforceRecord, salesforceRecordProblem, salesforceSentRecord } from './salesforce-payload';
import { SalesforceSession } from './salesforce-session';
import { COLLECTION_LIMIT, SalesforceUpsert, refusedCreateOnly, type Outcome, type Prepared, type ResolvedLookups } from './salesforce-upsert';

/**
 * Salesforce target: Tasks upserted by an External ID field through sObject
 * Collections, with WhoId/OwnerId/WhatId resolved in batches first. The
 * write itself is the engine's (engine/write-engine.ts); this file plugs in
 * what is Salesforce's. Vendor quirks: NOTES.md.
 */

export interface SalesforceTargetOptions {
  clock?: Clock;
}

export class SalesforceTarget implements CrmTarget, CrmDriver<Prepared, Outcome, ResolvedLookups, WriteContext> {
  readonly name = 'salesforce' as const;
  readonly needs = CRM_TARGET_NEEDS.salesforce;
  readonly maxBatch = COLLECTION_LIMIT;
  readonly crm = 'Salesforce';
  readonly kind = 'salesforce' as const;
  readonly clock: Clock;
  readonly pacer: Pacer;
  readonly timeoutMs: number;

  private readonly version: string;
  private readonly externalIdField: string;
  private readonly lookups: SalesforceLookups;
  private readonly upsert: SalesforceUpsert;
  private readonly engine: CrmWriteEngine<Prepared, Outcome, ResolvedLookups, WriteContext>;

  constructor(
    config: Config,
    readonly logger: Logger,
    options: SalesforceTargetOptions = {},
  ) {
    this.version = config.SALESFORCE_API_VERSION || SALESFORCE_API_VERSION_DEFAULT;
    const session = new SalesforceSession(config, logger, this.version);
    this.clock = options.clock ?? systemClock;
    this.externalIdField = config.SALESFORCE_EXTERNAL_ID_FIELD;
    this.timeoutMs = config.CRM_TIMEOUT_MS;
    // Salesforce limits concurrent long requests, not short ones; ten in
    // flight (jsforce's own default) is plenty for 200-record upserts.
    this.pacer = new Pacer({ name: 'Salesforce', clock: this.clock, maxConcurrent: 10 });
    const client = new SalesforceClient(session, this.pacer, this.clock, logger);
    this.lookups = new SalesforceLookups(config, logger, client, this.pacer, this.clock, this.version);
    this.upsert = new SalesforceUpsert(client, this.version, this.externalIdField);
    this.engine = new CrmWriteEngine(this);
  }

  pausedUntil(): Date | undefined {
    return this.pacer.pausedUntil();
  }

  write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    return this.engine.write(items, signal);
  }

  // ------------------------------------------------------- engine plug-ins

  begin(deadline: Deadline): WriteContext {
    return { deadline };
  }

  recordProblem(record: CrmRecord): string | undefined {
    return salesforceRecordProblem(record);
  }

  screen(): undefined {
    return undefined;
  }

  async resolveLookups(records: CrmRecord[], context: WriteContext): Promise<Map<CrmRecord, ResolvedLookups>> {
    const resolved = await resolveLookups(records, this.lookups, context.deadline);
    const out = new Map<CrmRecord, ResolvedLookups>();
    for (const [record, lookups] of resolved) out.set(record, shape(lookups));
    return out;
  }

  prepare(itemIndex: number, record: CrmRecord, lookups: ResolvedLookups | undefined, knownId: string | undefined): Prepared {
    return this.prepared(itemIndex, record, lookups ?? { values: {}, unresolved: [], cached: [] }, knownId !== undefined);
  }

  send(prepared: Prepared[], context: WriteContext): Promise<Map<Prepared, Outcome>> {
    return sendChunks(prepared, {
      limit: COLLECTION_LIMIT,
      send: (records) => this.upsert.request(records, context.deadline),
      failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null, fields: [] }),
    });
  }

  /**
   * A record we believed new already existed (a retry after a timeout the
   * org had applied, or ids lost): Salesforce refuses the create-only fields
   * on the update; the record is sent again without them.
   */
  resendFor(p: Prepared, outcome: Outcome): Prepared | undefined {
    return refusedCreateOnly(outcome, p) ? this.prepared(p.itemIndex, p.record, p.lookups, true) : undefined;
  }

  /**
   * The org refused an id one of our lookups produced (INVALID_CROSS_REFERENCE_KEY
   * on WhoId/OwnerId/WhatId: a Contact merged or deleted, a User
   * deactivated). An id the mapping gave (`by: id`) is not ours to doubt.
   */
  refusedLookups(p: Prepared, outcome: FailedOutcome<Outcome>): RefusedLookup[] {
    if (outcome.error.crmCode !== 'INVALID_CROSS_REFERENCE_KEY') return [];
    return Object.entries(p.record.lookups).flatMap(([field, lookup]) => {
      const value = p.payload[field];
      if (lookup.by === 'id' || p.lookups.unresolved.includes(field) || typeof value !== 'string') return [];
      if (!outcome.fields.includes(field) && !outcome.error.message.includes(value)) return [];
      return [{ name: field, cached: p.lookups.cached.includes(field), forget: () => forgetLookup(this.lookups, field, lookup) }];
    });
  }

  sentRecords(mine: Prepared[]): SentRecord[] {
    return mine.map((p) => ({
      ...salesforceSentRecord(p.record, this.version, this.externalIdField, p.payload),
      ...(p.lookups.unresolved.length > 0 ? { unresolved: p.lookups.unresolved } : {}),
    }));
  }

  callError(_mine: Prepared[], error: SyncError): SyncError {
    return error;
  }

  writeError(error: SyncError): SyncError {
    return error;
  }

  private prepared(itemIndex: number, record: CrmRecord, lookups: ResolvedLookups, omitCreateOnly: boolean): Prepared {
    return {
      itemIndex,
      record,
      omitCreateOnly,
      payload: buildSalesforceRecord(record, this.externalIdField, lookups.values, omitCreateOnly),
      lookups,
    };
  }
}

function shape(lookups: ResolvedLookup[]): ResolvedLookups {
  const resolved: ResolvedLookups = { values: {}, unresolved: [], cached: [] };
  for (const { name, id, cached } of lookups) {
    if (id === undefined) {
      resolved.unresolved.push(name);
      continue;
    }
    resolved.values[name] = id;
    if (cached) resolved.cached.push(name);
  }
  return resolved;
}
