import type { ContentfulStatusCode } from 'hono/utils/http-status';

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
