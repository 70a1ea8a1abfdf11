import type { Config } from '../../config';
import type { CrmRecord } from '../../core/crm-record';
import { SyncError } from '../../core/errors';
import { systemClock, type Clock } from '../../core/time';
import type { Logger } from '../../log';
import type { RefusedLookup } from '../engine/batch-loader';
import type { Deadline } from '../engine/deadline';
import type { Pacer } from '../engine/pacer';
import { forgetLookup, resolveLookups, type ResolvedLookup } from '../engine/resolve-lookups';
import type { SentRecord } from '../engine/sent-record';
import { CRM_TARGET_NEEDS } from '../../core/crm-targets';
import type { CrmTarget, WriteItem, WriteResult } from '../engine/target-contract';
import { CrmWriteEngine, type CrmDriver, type FailedOutcome, type PreparedRecord } from '../engine/write-engine';
import { HubSpotAssociations } from './hubspot-associations';
import { HubSpotBatch } from './hubspot-batch';
import { HubSpotClient } from './hubspot-client';
import { errorDetails, mentions, quotesValue } from './hubspot-errors';
import { HubSpotIdentity } from './hubspot-identity';
import { HubSpotLookups } from './hubspot-lookups';
import { ASSOCIATION_KEYS, HUBSPOT_BATCH_LIMIT, hubspotProperties, hubspotRecordProblem } from './hubspot-payload';
import type { Association, FoundLookup, ResolvedHubSpotLookups, HubSpotWriteContext, Outcome, Prepared } from './hubspot-prepared';
import { HubSpotWrites } from './hubspot-writes';

/**
 * HubSpot target: calls (and follow-up tasks) written through the batch
 * endpoints, 100 inputs a request, associated with the contact found by
 * phone, owned by the owner found by email. How each call's key is kept
 * (upsert by a unique property, or search before create) is
 * hubspot-identity.ts; the write itself is the engine's
 * (engine/write-engine.ts). Vendor quirks: NOTES.md.
 */

export interface HubSpotTargetOptions {
  clock?: Clock;
}

export class HubSpotTarget implements CrmTarget, CrmDriver<Prepared, Outcome, ResolvedHubSpotLookups, HubSpotWriteContext> {
  readonly name = 'hubspot' as const;
  readonly needs = CRM_TARGET_NEEDS.hubspot;
  readonly maxBatch = HUBSPOT_BATCH_LIMIT;
  readonly crm = 'HubSpot';
  readonly kind = 'hubspot' as const;
  readonly clock: Clock;
  readonly pacer: Pacer;
  readonly timeoutMs: number;

  private readonly lookups: HubSpotLookups;
  private readonly identity: HubSpotIdentity;
  private readonly associations: HubSpotAssociations;
  private readonly writes: HubSpotWrites;
  private readonly engine: CrmWriteEngine<Prepared, Outcome, ResolvedHubSpotLookups, HubSpotWriteContext>;

  constructor(
    config: Config,
    readonly logger: Logger,
    options: HubSpotTargetOptions = {},
  ) {
    if (config.HUBSPOT_ACCESS_TOKEN === undefined) throw new Error('HUBSPOT_ACCESS_TOKEN is required for the HubSpot target');
    this.clock = options.clock ?? systemClock;
    this.timeoutMs = config.CRM_TIMEOUT_MS;
    const client = new HubSpotClient(config, config.HUBSPOT_ACCESS_TOKEN, this.clock, logger);
    this.pacer = client.pacer;
    this.lookups = new HubSpotLookups(config, logger, client, this.clock);
    this.identity = new HubSpotIdentity(config, logger, client, this.clock);
    this.associations = new HubSpotAssociations(client, this.clock);
    const batch = new HubSpotBatch(client, this.identity, this.clock);
    this.writes = new HubSpotWrites(batch, this.identity, this.lookups, this.associations, this.clock);
    this.engine = new CrmWriteEngine(this);
  }

  pausedUntil(): Date | undefined {
    return this.pacer.pausedUntil();
  }

  write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    return this.engine.write(items, signal);
  }

  // ------------------------------------------------------- engine plug-ins

  begin(deadline: Deadline): HubSpotWriteContext {
    return { deadline, modes: new Map(), searchModeCreateSent: false };
  }

  recordProblem(record: CrmRecord): string | undefined {
    return hubspotRecordProblem(record);
  }

  /**
   * How each object keeps the call key; a call with a record that cannot be
   * kept (the property is missing) is refused whole, nothing written. A call
   * whose last search-mode create may have gone through waits until search
   * can see it.
   */
  async screen(records: ReadonlyArray<PreparedRecord>, items: readonly WriteItem[], refused: Map<number, SyncError>, context: HubSpotWriteContext): Promise<void> {
    context.modes = await this.identity.modes(new Set(records.filter((r) => !refused.has(r.itemIndex)).map((r) => r.record.object)), context.deadline);
    for (const { itemIndex, record } of records) {
      const mode = context.modes.get(record.object);
      if (mode?.kind === 'missing' && !refused.has(itemIndex)) refused.set(itemIndex, mode.error);
    }
    for (const { itemIndex, record } of records) {
      const item = items[itemIndex];
      if (refused.has(itemIndex) || item === undefined || item.knownIds[record.externalId] !== undefined) continue;
      const until = this.identity.inDoubtUntil(record);
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
  }

  async resolveLookups(records: CrmRecord[], context: HubSpotWriteContext): Promise<Map<CrmRecord, ResolvedHubSpotLookups>> {
    const resolved = await resolveLookups(records, this.lookups, context.deadline);
    const out = new Map<CrmRecord, ResolvedHubSpotLookups>();
    for (const [record, lookups] of resolved) out.set(record, shape(lookups));
    return out;
  }

  prepare(itemIndex: number, record: CrmRecord, lookups: ResolvedHubSpotLookups | undefined, knownId: string | undefined, context: HubSpotWriteContext): Prepared | undefined {
    const mode = context.modes.get(record.object);
    if (mode === undefined || mode.kind === 'missing') return undefined;
    const resolved = lookups ?? { properties: {}, resolvedBy: {}, associations: [], unresolved: [] };
    return {
      itemIndex,
      record,
      knownId,
      mode,
      resolved: resolved.properties,
      resolvedBy: resolved.resolvedBy,
      properties: hubspotProperties(record, knownId !== undefined, resolved.properties),
      associations: resolved.associations,
      unresolved: resolved.unresolved,
    };
  }

  async send(prepared: Prepared[], context: HubSpotWriteContext): Promise<Map<Prepared, Outcome>> {
    const [unique, searched] = await Promise.all([
      this.writes.upsertAll(
        prepared.filter((p) => p.mode.kind === 'upsert'),
        context,
      ),
      this.writes.searchThenWrite(
        prepared.filter((p) => p.mode.kind === 'search'),
        context,
      ),
    ]);
    const outcomes = new Map([...unique, ...searched]);
    await this.associations.associateAll(prepared, outcomes, context.deadline);
    return outcomes;
  }

  /** Nothing to resend: a create refused because the call exists is upserted within send(). */
  resendFor(): undefined {
    return undefined;
  }

  /**
   * HubSpot refused an id one of our lookups produced: an owner deactivated
   * (INVALID_OWNER_ID), a contact merged or deleted (the association was
   * refused). An id the mapping gave (`by: id`) is not ours to doubt.
   */
  refusedLookups(p: Prepared, outcome: FailedOutcome<Outcome>): RefusedLookup[] {
    const { error } = outcome;
    if (error.kind === 'transient') return [];
    const details = errorDetails(error.crmResponse);
    const refused: FoundLookup[] = [];
    for (const [name, found] of Object.entries(p.resolvedBy)) {
      const value = p.resolved[name];
      if (value === undefined) continue;
      const named = details.some((d) => d.propertyName === name && (d.code === 'INVALID_OWNER_ID' || quotesValue(d.message ?? '', value)));
      if (named) refused.push(found);
    }
    if (/associat|exists/i.test(error.message)) {
      for (const a of p.associations) if (a.lookup !== undefined && mentions(error.message, a.toId)) refused.push(a.lookup);
    }
    return refused.map((found) => ({ name: found.name, cached: found.cached, forget: () => forgetLookup(this.lookups, found.name, found.request) }));
  }

  sentRecords(mine: Prepared[], outcomes: ReadonlyMap<Prepared, Outcome>): SentRecord[] {
    return mine.flatMap((p) => {
      if (p.sent === undefined) return [];
      const outcome = outcomes.get(p);
      const associations = outcome?.ok === true ? outcome.associated.map((a) => ({ toObject: a.toObject, toId: a.toId })) : [];
      return [{ ...p.sent, ...(associations.length > 0 ? { associations } : {}), ...(p.unresolved.length > 0 ? { unresolved: p.unresolved } : {}) }];
    });
  }

  /**
   * The worker keeps no id from a failed call: a record this write created
   * in search mode must not be searched for (and created again) before
   * HubSpot's search can see it.
   */
  callError(mine: Prepared[], error: SyncError): SyncError {
    return mine.some((p) => p.createdBySearchMode === true) ? this.identity.notBeforeSearchLag(error) : error;
  }

  writeError(error: SyncError, context: HubSpotWriteContext): SyncError {
    return context.searchModeCreateSent ? this.identity.notBeforeSearchLag(error) : error;
  }
}

function shape(lookups: ResolvedLookup[]): ResolvedHubSpotLookups {
  const out: ResolvedHubSpotLookups = { properties: {}, resolvedBy: {}, associations: [], unresolved: [] };
  for (const { name, request, id, cached } of lookups) {
    const toObject = ASSOCIATION_KEYS[name];
    const found = request.by === 'id' ? undefined : { name, request, cached };
    if (id === undefined) out.unresolved.push(name);
    else if (toObject !== undefined) {
      const association: Association = { toObject, toId: id, ...(found === undefined ? {} : { lookup: found }) };
      out.associations.push(association);
    } else {
      out.properties[name] = id;
      if (found !== undefined) out.resolvedBy[name] = found;
    }
  }
  return out;
}
