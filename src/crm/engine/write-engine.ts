import type { CrmKind, CrmRecord } from '../../core/crm-record';
import { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { unlessStaleLookup, type RefusedLookup } from './batch-loader';
import { groupByItem, transportError, worstError } from './classify-errors';
import { Deadline } from './deadline';
import type { Pacer } from './pacer';
import { toJson, type SentRecord } from './sent-record';
import type { WriteItem, WriteResult } from './target-contract';

/**
 * The write every CRM target runs, written once: check each record, let the
 * CRM screen the calls, resolve lookups, prepare the payloads, send, resend
 * what the CRM asks to be sent again, treat refusals of stale cached lookups,
 * and answer one WriteResult per call (the worst error speaks for a call with
 * several records). A CRM plugs in through CrmDriver.
 */

/** A record of a call, ready to send. */
export interface PreparedRecord {
  /** Index of its call (WriteItem) in the batch. */
  itemIndex: number;
  record: CrmRecord;
}

/** What the CRM answered for one record. */
export type RecordOutcome =
  | { ok: true; id: string; created: boolean; result: JsonValue }
  | { ok: false; error: SyncError; result?: JsonValue };

export type FailedOutcome<O extends RecordOutcome> = Extract<O, { ok: false }>;

/** One write's state: its deadline, and whatever else the CRM keeps for it. */
export interface WriteContext {
  deadline: Deadline;
}

/** The pieces a CRM plugs into the engine: each is required, a CRM without a use for one answers the neutral value. */
export interface CrmDriver<P extends PreparedRecord, O extends RecordOutcome, L, C extends WriteContext> {
  /** The CRM's name in messages and logs ("Salesforce"). */
  readonly crm: string;
  /** Which of a call's records the CRM writes, and the `crm` of WriteResult.sent. */
  readonly kind: CrmKind;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Paused while a quota is spent: a write then fails at once. */
  readonly pacer: Pacer;
  /** The write's state. */
  begin(deadline: Deadline): C;
  /** Why the CRM cannot take this record (a bad object or field name): the call fails with a mapping error. */
  recordProblem(record: CrmRecord): string | undefined;
  /**
   * Calls to hold back before anything is looked up or sent (HubSpot: a
   * missing id property, a create in doubt): sets their error in `refused`.
   * Answers undefined when it had nothing to wait for.
   */
  screen(records: ReadonlyArray<PreparedRecord>, items: readonly WriteItem[], refused: Map<number, SyncError>, context: C): Promise<void> | undefined;
  /** The lookups of the records to write, resolved (see resolve-lookups.ts). */
  resolveLookups(records: CrmRecord[], context: C): Promise<Map<CrmRecord, L>>;
  /** The record ready to send; undefined when it cannot be sent (the screen refused its call). */
  prepare(itemIndex: number, record: CrmRecord, lookups: L | undefined, knownId: string | undefined, context: C): P | undefined;
  /** Sends the records (by object and chunk, see send-chunks.ts): the CRM's answer for each. */
  send(prepared: P[], context: C): Promise<Map<P, O>>;
  /** A refused record to send once more, changed (Salesforce: without its create-only fields); undefined for none. */
  resendFor(p: P, outcome: O): P | undefined;
  /** The looked-up values the CRM named in refusing this record (the stale-lookup rule, see batch-loader.ts). */
  refusedLookups(p: P, outcome: FailedOutcome<O>): RefusedLookup[];
  /** What was sent for a call's records, for WriteResult.sent. */
  sentRecords(mine: P[], outcomes: ReadonlyMap<P, O>): SentRecord[];
  /** The error a call reports (HubSpot holds back a retry that could create a call twice). */
  callError(mine: P[], error: SyncError, context: C): SyncError;
  /** The error the whole write throws. */
  writeError(error: SyncError, context: C): SyncError;
}

export class CrmWriteEngine<P extends PreparedRecord, O extends RecordOutcome, L, C extends WriteContext> {
  constructor(private readonly driver: CrmDriver<P, O, L, C>) {}

  /** CrmTarget.write: one result per item, in order; throws SyncError when the whole batch failed. */
  async write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]> {
    const { driver } = this;
    driver.pacer.assertNotPaused();
    const deadline = new Deadline(driver.timeoutMs, driver.crm, signal);
    const context = driver.begin(deadline);
    try {
      return await this.writeWithin(items, context);
    } catch (err) {
      // The deadline's reason is a SyncError, which transportError passes through.
      const cause: unknown = deadline.signal.aborted && !(err instanceof SyncError) ? deadline.signal.reason : err;
      throw driver.writeError(transportError(cause, driver.crm), context);
    } finally {
      deadline.dispose();
    }
  }

  private async writeWithin(items: WriteItem[], context: C): Promise<WriteResult[]> {
    const { driver } = this;
    const refused = new Map<number, SyncError>();
    const records: PreparedRecord[] = [];
    items.forEach((item, itemIndex) => {
      for (const record of item.records[driver.kind] ?? []) {
        const problem = driver.recordProblem(record);
        if (problem !== undefined) refused.set(itemIndex, new SyncError('mapping', problem));
        else records.push({ itemIndex, record });
      }
    });
    const screening = driver.screen(records, items, refused, context);
    if (screening !== undefined) await screening;

    const writable = records.filter((r) => !refused.has(r.itemIndex));
    const lookups = await driver.resolveLookups(
      writable.map((r) => r.record),
      context,
    );
    const prepared = writable.flatMap(({ itemIndex, record }) => {
      const knownId = items[itemIndex]?.knownIds[record.externalId];
      const p = driver.prepare(itemIndex, record, lookups.get(record), knownId, context);
      return p === undefined ? [] : [p];
    });

    const outcomes = await driver.send(prepared, context);
    await this.resend(prepared, outcomes, context);
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      if (outcome !== undefined && !outcome.ok) outcomes.set(p, this.unlessStaleLookup(p, outcome as FailedOutcome<O>));
    }

    const byItem = groupByItem(prepared);
    return items.map((item, itemIndex) => {
      const error = refused.get(itemIndex);
      if (error !== undefined) return { ok: false, error };
      return this.resultFor(item, byItem.get(itemIndex) ?? [], outcomes, context);
    });
  }

  /** Records the CRM asks to be sent again, changed: their second answer replaces the first (in `prepared` too). */
  private async resend(prepared: P[], outcomes: Map<P, O>, context: C): Promise<void> {
    const retry: Array<{ p: P; again: P }> = [];
    for (const p of prepared) {
      const outcome = outcomes.get(p);
      const again = outcome === undefined ? undefined : this.driver.resendFor(p, outcome);
      if (again !== undefined) retry.push({ p, again });
    }
    if (retry.length === 0) return;
    const second = await this.driver.send(
      retry.map((r) => r.again),
      context,
    );
    for (const { p, again } of retry) {
      const outcome = second.get(again);
      if (outcome === undefined) continue;
      outcomes.delete(p);
      outcomes.set(again, outcome);
      prepared[prepared.indexOf(p)] = again;
    }
  }

  private unlessStaleLookup(p: P, outcome: FailedOutcome<O>): O {
    const refused = this.driver.refusedLookups(p, outcome);
    if (refused.length === 0) return outcome;
    return { ...outcome, error: unlessStaleLookup(outcome.error, refused, this.driver.clock.now()) };
  }

  private resultFor(item: WriteItem, mine: P[], outcomes: Map<P, O>, context: C): WriteResult {
    const { driver } = this;
    const sent = toJson({ crm: driver.kind, records: driver.sentRecords(mine, outcomes) });
    const errors: SyncError[] = [];
    const ids: Record<string, string> = {};
    const responses: JsonValue[] = [];
    let created = false;
    const activity = mine.find((p) => p.record.kind === 'activity') ?? mine[0];
    for (const p of mine) {
      const outcome = outcomes.get(p);
      if (outcome === undefined) {
        errors.push(new SyncError('transient', `${driver.crm} returned no result for this record`));
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
    if (error !== undefined) return { ok: false, error: driver.callError(mine, error, context), sent };
    if (mine.length === 0) driver.logger.debug({ externalId: item.externalId }, `no ${driver.crm} records for this call`);
    return { ok: true, ids, created, sent, response: responses };
  }
}
