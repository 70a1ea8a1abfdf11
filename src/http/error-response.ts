import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { AppError, type ErrorBody } from '../core/errors';
import { databaseUnavailable } from '../db/classify-db-error';
import type { Logger } from '../log';
import type { AppEnv } from './context';

export interface ErrorResponse {
  status: ContentfulStatusCode;
  body: ErrorBody;
  /** What was thrown: a refusal we meant (an AppError), a database we cannot reach, or a fault. The admin page words its HTML by it. */
  kind: 'refusal' | 'database_unavailable' | 'internal';
}

/**
 * The one translation of a thrown value into an answer, for the app's error
 * handler (webhooks, health, metrics), the admin API and the admin page:
 *  - an AppError answers its own status and `{ error: { code, message } }`;
 *  - a database that cannot be reached (or an error caused by one) answers
 *    503 database_unavailable, which clients retry, unlike a 500;
 *  - anything else is 500 internal naming the request id, never the error's
 *    own message (it can quote SQL or call data).
 * It logs what an operator needs: 5xx AppErrors and faults as errors, an
 * unreachable database as a warning.
 */
export function errorResponse(err: unknown, request: { requestId: string | undefined; log: Logger }): ErrorResponse {
  const { log } = request;
  if (err instanceof AppError) {
    if (err.status >= 500) log.error({ err, cause: err.cause, code: err.code }, err.message);
    return { status: err.status, body: err.toBody(), kind: 'refusal' };
  }
  const dbFailure = databaseUnavailable(err);
  if (dbFailure !== undefined) {
    log.warn({ err: dbFailure }, 'the database is unavailable');
    const unavailable = new AppError('database_unavailable', 'the database cannot be reached right now; try again shortly');
    return { status: unavailable.status, body: unavailable.toBody(), kind: 'database_unavailable' };
  }
  log.error({ err }, 'unhandled error');
  const internal = new AppError('internal', `internal error; see the server log for request ${request.requestId}`);
  return { status: internal.status, body: internal.toBody(), kind: 'internal' };
}

/** errorResponse as JSON, from a handler of a request that went through requestContext() (which sets its logger). */
export function jsonErrorResponse(c: Context<AppEnv>, err: unknown): Response {
  const { status, body } = errorResponse(err, { requestId: c.get('requestId'), log: c.get('log') });
  return c.json(body, status);
}
