import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { JsonValue } from './json';

/**
 * The one error type the HTTP layer answers with. Each code maps to exactly
 * one status (the `satisfies` below fails to compile when a code is missing),
 * and every response has the shape `{ error: { code, message } }`.
 */
export const ERROR_CODES = [
  'bad_request',
  'invalid_json',
  'not_json_object',
  'unauthorized',
  'forbidden',
  'admin_disabled',
  'not_found',
  'unknown_source',
  'unknown_event',
  'method_not_allowed',
  'payload_too_large',
  'unsupported_media_type',
  'conflict',
  'validation_failed',
  'mapping_failed',
  'database_unavailable',
  'not_ready',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  not_json_object: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  admin_disabled: 403,
  not_found: 404,
  unknown_source: 404,
  unknown_event: 404,
  method_not_allowed: 405,
  conflict: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  /** The current mappings cannot fold a call the admin asked to replay. */
  mapping_failed: 422,
  internal: 500,
  database_unavailable: 503,
  not_ready: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

export class AppError extends Error {
  readonly status: ContentfulStatusCode;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
    this.status = ERROR_STATUS[code];
  }

  toBody(): ErrorBody {
    return { error: { code: this.code, message: this.message } };
  }
}

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** The message of any thrown value, for logs and stored errors. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}

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

/** A mapping file could not build what a call needs; says which file and rule. */
export class MappingError extends Error {
  constructor(
    message: string,
    readonly details: { source?: string; file?: string; line?: number; field?: string } = {},
  ) {
    super(message);
    this.name = 'MappingError';
  }
}
