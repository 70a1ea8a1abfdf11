import path from 'node:path';
import { errorMessage, MappingError, SyncError } from '../core/errors';
import { type CrmKind, type CrmRecord } from '../core/crm-record';
import { type JsonValue } from '../core/json';
import { type StoredEvent } from '../core/event';
import type { CrmTarget, WriteItem, WriteResult } from '../crm/engine/target-contract';
import type { MappingSet } from '../mapping/mapping-set';
import type { ClaimedCall } from '../outbox/claim-calls';
import type { SyncCompletion } from '../outbox/complete-syncs';

/** Turns a failed attempt into its completion: retry or give up (see retry.ts). */
export type FailureOutcome = (base: Omit<SyncCompletion, 'outcome' | 'countsAsAttempt'>, error: SyncError) => SyncCompletion;

/** A call folded and mapped, ready for the CRM write. */
export interface PreparedCall {
  call: ClaimedCall;
  item: WriteItem;
  activity: JsonValue;
  /** The newest event folded in: the completion marks events up to it. */
  maxEventId: number;
}

/**
 * Folds each claimed call's events into one activity and builds the CRM
 * records the target needs, as one write item per call. A call the mappings
 * cannot fold or map fails alone (`completions`): one poison event never
 * holds up the rest of the batch (`pending`).
 */
export async function prepareBatch(
  batch: Array<{ call: ClaimedCall; events: StoredEvent[] }>,
  mappings: MappingSet,
  target: Pick<CrmTarget, 'name' | 'needs'>,
  startedAt: Date,
  fail: FailureOutcome,
): Promise<{ pending: PreparedCall[]; completions: SyncCompletion[] }> {
  const completions: SyncCompletion[] = [];
  const pending: PreparedCall[] = [];
  for (const { call, events } of batch) {
    const maxEventId = events.reduce((max, e) => Math.max(max, e.id), 0);
    const base = { id: call.id, source: call.source, callKey: call.callKey, claimedVersion: call.version, maxEventId, target: target.name, startedAt, attempt: call.attempts + 1 };
    try {
      if (events.length === 0) throw new MappingError('the call has no syncable events (were they discarded?)');
      const activity = await mappings.fold(call.source, call.callKey, events);
      const records: Partial<Record<CrmKind, CrmRecord[]>> = {};
      for (const crm of target.needs) records[crm] = await mappings.toCrm(activity, crm);
      // Stored ids are only this target's to use: after a switch (dry-run to
      // Salesforce, say) they name records in another system.
      const knownIds: Record<string, string> = {};
      if (call.target === target.name) {
        if (call.crmId) knownIds[activity.externalId] = call.crmId;
        if (call.crmFollowupId) knownIds[`${activity.externalId}:callback`] = call.crmFollowupId;
      }
      pending.push({
        call,
        maxEventId,
        activity: activity as unknown as JsonValue,
        item: { syncId: call.id, externalId: activity.externalId, records, knownIds },
      });
    } catch (err) {
      // A poison event fails its own call only; the rest of the batch goes on.
      const error = err instanceof SyncError ? err : new SyncError('mapping', `mapping failed: ${errorMessage(err)}${whereInMappings(err)}`, { cause: err });
      completions.push(fail(base, error));
    }
  }
  return { pending, completions };
}

/** The completions of a batch's written calls, from the target's per-call results (in the items' order). */
export function writeCompletions(
  pending: PreparedCall[],
  results: WriteResult[],
  target: Pick<CrmTarget, 'name'>,
  startedAt: Date,
  fail: FailureOutcome,
): SyncCompletion[] {
  const completions: SyncCompletion[] = [];
  pending.forEach((p, index) => {
    const result = results[index] ?? { ok: false as const, error: new SyncError('transient', 'the target gave no result for this call') };
    const base = {
      id: p.call.id,
      source: p.call.source,
      callKey: p.call.callKey,
      claimedVersion: p.call.version,
      maxEventId: p.maxEventId,
      target: target.name,
      startedAt,
      attempt: p.call.attempts + 1,
      activity: p.activity,
    };
    if (result.ok) {
      const externalId = p.item.externalId;
      completions.push({
        ...base,
        outcome: 'synced',
        countsAsAttempt: true,
        crmId: result.ids[externalId] ?? null,
        crmFollowupId: result.ids[`${externalId}:callback`] ?? null,
        crmPayload: result.sent,
        ...(result.response === undefined ? {} : { crmResponse: result.response }),
      });
    } else {
      completions.push({ ...fail(base, result.error), ...(result.sent === undefined ? {} : { crmPayload: result.sent }) });
    }
  });
  return completions;
}

/** ' (hcc.yaml:78, custom.qaCheck)': which file and rule to fix, when the mapping layer knows. */
function whereInMappings(err: unknown): string {
  if (!(err instanceof MappingError) || err.details.file === undefined) return '';
  const { line, field } = err.details;
  // mappings/hcc.yaml rather than an absolute path, when the files live under the working directory.
  const relative = path.relative(process.cwd(), err.details.file);
  const file = relative.startsWith('..') || path.isAbsolute(relative) ? err.details.file : relative;
  const place = line === undefined ? file : `${file}:${line}`;
  return field === undefined || field === '' ? ` (${place})` : ` (${place}, ${field})`;
}
