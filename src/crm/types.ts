import type { CrmKind, CrmRecord, JsonValue } from '../mapping/types';

/**
 * The contract between the worker and a CRM target. The worker folds each
 * call, builds its records with the mapping layer, and hands a batch to the
 * target; the target resolves lookups, writes, and answers per call.
 */

export const SYNC_ERROR_KINDS = ['transient', 'auth', 'quota', 'permanent', 'mapping'] as const;
export type SyncErrorKind = (typeof SYNC_ERROR_KINDS)[number];

/**
 * A failure to write, classified by the target that saw it, so the worker
 * decides retry-now / reschedule / fail without matching strings.
 *  - transient: network, timeout, 5xx, 429, UNABLE_TO_LOCK_ROW...: retry with backoff
 *  - auth: the credentials were refused even after one refresh: retry later
 *  - quota: daily/org limit spent: no calls to this target until `retryAt`
 *  - permanent: the CRM rejected this record (validation): fail it, keep the others
 *  - mapping: our mapping could not build the record: fail it until the mapping is fixed
 */
export class SyncError extends Error {
  readonly kind: SyncErrorKind;
  readonly retryable: boolean;
  /** Earliest time to try again (Retry-After, a quota reset). */
  readonly retryAt: Date | undefined;
  readonly httpStatus: number | undefined;
  /** The CRM's response body (or the relevant part), for the admin. */
  readonly crmResponse: JsonValue | undefined;
  /** The CRM's own error code (Salesforce errorCode/statusCode, HubSpot category). */
  readonly crmCode: string | undefined;

  constructor(
    kind: SyncErrorKind,
    message: string,
    options: {
      retryAt?: Date | undefined;
      httpStatus?: number | undefined;
      crmResponse?: JsonValue | undefined;
      crmCode?: string | undefined;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SyncError';
    this.kind = kind;
    this.retryable = kind === 'transient' || kind === 'auth' || kind === 'quota';
    this.retryAt = options.retryAt;
    this.httpStatus = options.httpStatus;
    this.crmResponse = options.crmResponse;
    this.crmCode = options.crmCode;
  }

  /**
   * The same refusal judged otherwise (another kind, a message saying why,
   * a retryAt), keeping what the CRM answered (status, code, body).
   */
  recast(kind: SyncErrorKind, message: string, retryAt?: Date): SyncError {
    return new SyncError(kind, message, {
      retryAt,
      httpStatus: this.httpStatus,
      crmCode: this.crmCode,
      crmResponse: this.crmResponse,
    });
  }
}

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
  readonly name: 'salesforce' | 'hubspot' | 'dry-run';
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
