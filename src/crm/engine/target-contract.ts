import type { CrmKind, CrmRecord } from '../../core/crm-record';
import type { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import type { CrmTargetName } from '../../core/crm-targets';

/**
 * The contract between the worker and a CRM target. The worker folds each
 * call, builds its records with the mapping layer, and hands a batch to the
 * target; the target resolves lookups, writes, and answers per call.
 */

/** One call to write: its records for the CRM shapes the target asked for. */
export interface WriteItem {
  /** call_syncs.id */
  syncId: number;
  /** `<source>:<callKey>` */
  externalId: string;
  records: Partial<Record<CrmKind, CrmRecord[]>>;
  /** Ids this call already has in the target (from earlier syncs), by record externalId. */
  knownIds: Record<string, string>;
}

export type WriteResult =
  | {
      ok: true;
      /** The CRM id of each record written, by record externalId. */
      ids: Record<string, string>;
      /** True when the activity record was created by this write (not updated). */
      created: boolean;
      /** Exactly what was sent for this call (after lookups), for the admin and dry-run. */
      sent: JsonValue;
      response?: JsonValue;
    }
  | {
      ok: false;
      error: SyncError;
      sent?: JsonValue;
    };

export interface CrmTarget {
  readonly name: CrmTargetName;
  /** The record shapes the worker must build for this target. */
  readonly needs: readonly CrmKind[];
  /** Most calls one write() should carry (one CRM request: 200 Salesforce, 100 HubSpot). */
  readonly maxBatch: number;
  /**
   * Writes a batch. Answers one result per item, in order: per-record
   * rejections are `ok: false` results and the rest of the batch goes on.
   * Throws SyncError when the whole batch failed (network, 5xx, 429, quota).
   */
  write(items: WriteItem[], signal?: AbortSignal): Promise<WriteResult[]>;
  /** While a quota is spent: when calls may resume. */
  pausedUntil(): Date | undefined;
  close?(): Promise<void>;
}
