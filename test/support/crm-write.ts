import type { CrmKind, CrmRecord } from '../../src/core/crm-record';
import { SyncError } from '../../src/core/errors';
import type { WriteItem, WriteResult } from '../../src/crm/engine/target-contract';

/**
 * What the CRM target tests (src/crm/salesforce, src/crm/hubspot) share:
 * building the calls they write and reading what a write answered.
 */

/** One call to write: its records for `crm`, keyed by the first record's external id. */
export function writeItem(crm: CrmKind, syncId: number, records: CrmRecord[], knownIds: Record<string, string> = {}): WriteItem {
  return { syncId, externalId: records[0]?.externalId ?? `x:${syncId}`, records: { [crm]: records }, knownIds };
}

export function ok(result: WriteResult | undefined): Extract<WriteResult, { ok: true }> {
  if (result === undefined || !result.ok) throw new Error(`expected success, got ${JSON.stringify(result)}`);
  return result;
}

export function failed(result: WriteResult | undefined): Extract<WriteResult, { ok: false }> {
  if (result === undefined || result.ok) throw new Error(`expected failure, got ${JSON.stringify(result)}`);
  return result;
}

export async function rejection(promise: Promise<unknown>): Promise<SyncError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SyncError) return err;
    throw err;
  }
  throw new Error('expected a SyncError');
}
