import { SyncError } from '../../core/errors';
import type { Clock } from '../../core/time';
import type { Deadline } from '../engine/deadline';
import type { BatchAttempt } from '../engine/isolate';
import { chunksByObject, sendChunks } from '../engine/send-chunks';
import type { HubSpotAssociations } from './hubspot-associations';
import type { BatchOperation, HubSpotBatch } from './hubspot-batch';
import { errorDetails, mentions, quotesKey } from './hubspot-errors';
import { SEARCH_LAG_MS, type HubSpotIdentity } from './hubspot-identity';
import type { HubSpotLookups } from './hubspot-lookups';
import { HUBSPOT_BATCH_LIMIT, hubspotCreateSent, hubspotProperties, hubspotUpdateSent, hubspotUpsertSent } from './hubspot-payload';
import type { HubSpotWriteContext, Outcome, Prepared } from './hubspot-prepared';

/**
 * How records are written in each identity mode (see hubspot-identity.ts):
 * with a unique id property create, then upsert what exists; without one
 * search the property, update what was found and create the rest.
 */
export class HubSpotWrites {
  constructor(
    private readonly batch: HubSpotBatch,
    private readonly identity: HubSpotIdentity,
    private readonly lookups: HubSpotLookups,
    private readonly associations: HubSpotAssociations,
    private readonly clock: Clock,
  ) {}

  /**
   * With a unique id property. Calls the worker has no id for yet (almost
   * always new) are created, their associations inline. The unique property
   * makes a second create of the same call impossible: a create HubSpot
   * refuses because the call's key exists (an earlier attempt it applied
   * though the answer timed out, two workers raced) is upserted by the
   * property, without its create-only properties. Every other refusal stands
   * for this write: it is no sign that the call exists, and an upsert would
   * create a new call without its create-only properties, which later
   * writes never send. Calls with a known id are upserted.
   */
  async upsertAll(prepared: Prepared[], context: HubSpotWriteContext): Promise<Map<Prepared, Outcome>> {
    if (prepared.length === 0) return new Map();
    const outcomes = await this.createAll(
      prepared.filter((p) => p.knownId === undefined),
      context,
    );
    const upserts = prepared.filter((p) => {
      const outcome = outcomes.get(p);
      return outcome === undefined || (!outcome.ok && existsAlready(p, outcome.error));
    });
    for (const p of upserts) {
      outcomes.delete(p);
      // It exists: the create-only properties were never meant for it.
      p.properties = hubspotProperties(p.record, true, p.resolved);
      p.sent = hubspotUpsertSent(p.record, p.properties, p.mode.property ?? this.identity.idProperty);
    }
    await this.writeChunks(upserts, 'upsert', outcomes, context.deadline);
    return outcomes;
  }

  /**
   * Without a unique property: update what we know (from the worker, or
   * created by this process moments ago), search the id property for the
   * rest, create only what the search did not find.
   */
  async searchThenWrite(prepared: Prepared[], context: HubSpotWriteContext): Promise<Map<Prepared, Outcome>> {
    if (prepared.length === 0) return new Map();
    const found = new Map<Prepared, string>();
    const unknown: Prepared[] = [];
    for (const p of prepared) {
      if (p.knownId !== undefined) continue;
      const created = this.identity.createdId(p.record);
      if (created !== undefined) found.set(p, created);
      else unknown.push(p);
    }
    await Promise.all(
      chunksByObject(unknown, HUBSPOT_BATCH_LIMIT).map(async (chunk) => {
        const object = chunk[0]?.record.object ?? '';
        const property = chunk[0]?.mode.property;
        if (property === undefined) return;
        const hits = await this.lookups.searchIds(object, property, chunk.map((p) => p.record.externalId), context.deadline, false);
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
      // It exists: the create-only properties were never meant for it.
      p.properties = hubspotProperties(p.record, true, p.resolved);
      p.sent = hubspotUpdateSent(p.record, p.properties, id);
      updates.push(p);
    }
    const [outcomes, updated] = await Promise.all([
      this.createAll(creates, context),
      this.writeChunks(updates, 'update', new Map(), context.deadline),
    ]);
    for (const [p, outcome] of updated) outcomes.set(p, outcome);
    return outcomes;
  }

  /** batch/create, the identity property and the associations HubSpot knows a default type for inline. */
  private async createAll(creates: Prepared[], context: HubSpotWriteContext): Promise<Map<Prepared, Outcome>> {
    for (const p of creates) p.sent = hubspotCreateSent(p.record, p.properties, p.mode.property, p.associations);
    const outcomes = await sendChunks<Prepared, Outcome>(creates, {
      limit: HUBSPOT_BATCH_LIMIT,
      send: (records) => (records[0]?.mode.kind === 'search' ? this.searchModeCreate(records, context) : this.batch.request('create', records, context.deadline)),
      failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null }),
    });
    for (const p of creates) {
      const outcome = outcomes.get(p);
      if (outcome?.ok === true) this.associations.createdWith(p, outcome);
    }
    return outcomes;
  }

  /**
   * A create without a unique property to stop a second one: until HubSpot
   * has answered, the calls are "in doubt" (a timeout or a 5xx may hide a
   * create that went through). An answer settles them: the ids created are
   * remembered for retries, refusals are final. No answer leaves them in
   * doubt, and this write's failure carries a retryAt past the search lag.
   */
  private async searchModeCreate(records: Prepared[], context: HubSpotWriteContext): Promise<BatchAttempt<Prepared, Outcome>> {
    const until = this.clock.now() + SEARCH_LAG_MS;
    for (const p of records) this.identity.markInDoubt(p.record, until);
    context.searchModeCreateSent = true;
    let attempt: BatchAttempt<Prepared, Outcome>;
    try {
      attempt = await this.batch.request('create', records, context.deadline);
    } catch (err) {
      // 429 and 423 are refused before anything is applied.
      if (err instanceof SyncError && (err.httpStatus === 429 || err.httpStatus === 423)) {
        for (const p of records) this.identity.settle(p.record);
      }
      throw err;
    }
    records.forEach((p, i) => {
      const outcome = attempt.accepted ? attempt.outcomes[i] : undefined;
      if (outcome?.ok === true) this.identity.rememberCreated(p.record, outcome.id);
      // Refused, or created: either way no longer in doubt. Without a result
      // of its own (a 2xx that left it out) it stays in doubt.
      if (!attempt.accepted || outcome?.ok === true || (outcome !== undefined && outcome.error.kind !== 'transient')) this.identity.settle(p.record);
      if (outcome === undefined || outcome.ok || outcome.error.kind === 'transient') p.createdBySearchMode = attempt.accepted;
    });
    return attempt;
  }

  private writeChunks(prepared: Prepared[], operation: Exclude<BatchOperation, 'create'>, outcomes: Map<Prepared, Outcome>, deadline: Deadline): Promise<Map<Prepared, Outcome>> {
    return sendChunks<Prepared, Outcome>(
      prepared,
      {
        limit: HUBSPOT_BATCH_LIMIT,
        send: (records) => this.batch.request(operation, records, deadline),
        failed: (_, error) => ({ ok: false, error, result: error.crmResponse ?? null }),
      },
      outcomes,
    );
  }
}

/**
 * Whether HubSpot refused this call's create because a record with its key
 * exists: "already exists" (409 CONFLICT, as for a contact's email;
 * OBJECT_ALREADY_EXISTS), or a CONFLICT about the id property or this
 * call's key. Not a conflict over another property, and not a refusal this
 * call shared with others that named nobody (NOT_ISOLATED).
 */
function existsAlready(p: Prepared, error: SyncError): boolean {
  if (error.crmCode === 'NOT_ISOLATED') return false;
  const identity = p.mode.property;
  const details = errorDetails(error.crmResponse);
  if (details.some((d) => d.propertyName !== undefined && d.propertyName !== identity)) return false;
  const texts = [error.message, ...details.map((d) => d.message ?? '')];
  if (error.crmCode === 'OBJECT_ALREADY_EXISTS' || texts.some((t) => /already exists/i.test(t))) return true;
  return error.crmCode === 'CONFLICT' && texts.some((t) => (identity !== undefined && mentions(t, identity)) || quotesKey(t, p.record.externalId));
}
