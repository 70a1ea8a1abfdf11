import type { Connection, HttpRequest, HttpResponse, Schema } from 'jsforce/lib/core.js';
import { HttpApi } from 'jsforce/lib/http-api.js';
import { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { asJson, parseJsonBody, parseRetryAfter, stringField, transportError } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import type { Pacer } from '../engine/pacer';
import type { SalesforceSession } from './salesforce-session';

/**
 * Salesforce REST requests: paced, within the write's deadline, through
 * jsforce's HttpApi with its own retries off (see NOTES.md), and classified:
 * a failure of the whole request (session, quota, rate, server) is thrown as
 * a SyncError, any other answer is returned for the caller to read.
 */

/** TotalRequests is a rolling 24 h window: capacity returns gradually, so probe hourly. */
const QUOTA_PROBE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Error codes worth retrying, whether a record answers them or the whole
 * request does (Salesforce sends UNABLE_TO_LOCK_ROW at the top level with a
 * 400 as well): the condition passes, the request itself was fine.
 */
export const TRANSIENT_CODES = new Set(['UNABLE_TO_LOCK_ROW', 'SERVER_UNAVAILABLE', 'REQUEST_RUNNING_TOO_LONG', 'QUERY_TIMEOUT']);

export interface SfResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/**
 * jsforce's HttpApi with three changes: remember the raw response (status and
 * headers: Sforce-Limit-Info, Retry-After), hand every status back to us
 * instead of throwing its own error types, and refresh the session at most
 * once per request.
 */
class SalesforceHttp extends HttpApi<Schema> {
  lastResponse: HttpResponse | undefined;
  private refreshed = false;

  constructor(conn: Connection, options: { retry: { maxRetries: number }; timeout: number }) {
    super(conn, options);
    this.on('response', (response: HttpResponse) => {
      this.lastResponse = response;
    });
  }

  override isSessionExpired(response: HttpResponse): boolean {
    if (this.refreshed) return false;
    const expired = super.isSessionExpired(response);
    if (expired) this.refreshed = true;
    return expired;
  }

  override isErrorResponse(): boolean {
    return false;
  }

  override async getResponseBody(response: HttpResponse): Promise<string> {
    return response.body;
  }
}

export class SalesforceClient {
  constructor(
    private readonly session: SalesforceSession,
    private readonly pacer: Pacer,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /**
   * One REST request, paced, within the write's deadline. Failures of the
   * whole request (session, quota, rate, server) are thrown as SyncError;
   * other answers (200, 400, 404) are returned for the caller to read.
   */
  async call(method: 'GET' | 'PATCH', path: string, body: unknown, deadline: Deadline): Promise<SfResponse> {
    await this.session.ensureSession(deadline);
    const release = await this.pacer.acquire(deadline);
    try {
      const { conn } = this.session;
      const http = new SalesforceHttp(conn, {
        retry: { maxRetries: 0 },
        // Aborts the underlying fetch shortly after our deadline has fired
        // (the deadline, not jsforce's "Request Timeout", reports it).
        timeout: deadline.remainingMs() + 1_000,
      });
      const request: HttpRequest = {
        method,
        url: `${conn.instanceUrl}${path}`,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      };
      try {
        await deadline.race(Promise.resolve(http.request<string>(request)));
      } catch (err) {
        // jsforce's own timeout fires with ours; report it as the deadline.
        if (deadline.signal.aborted) throw deadline.signal.reason;
        if (err instanceof SyncError) throw err;
        const grantError = this.session.lastGrantError;
        if (err instanceof Error && err.message.startsWith('Unable to refresh session') && grantError !== undefined) {
          throw grantError;
        }
        throw transportError(err, 'Salesforce');
      }
      const raw = http.lastResponse;
      if (raw === undefined) throw new SyncError('transient', 'Salesforce sent no response');
      const response: SfResponse = { status: raw.statusCode, headers: raw.headers, body: parseJsonBody(raw.body) };
      this.observe(response);
      this.throwIfRequestFailed(response);
      return response;
    } finally {
      release();
    }
  }

  /** Sforce-Limit-Info: api-usage=used/limit over the org's rolling 24 hours. */
  private observe(response: SfResponse): void {
    const info = response.headers['sforce-limit-info'];
    const usage = info === undefined ? null : /api-usage=(\d+)\/(\d+)/.exec(info);
    if (usage === null) return;
    const used = Number(usage[1]);
    const limit = Number(usage[2]);
    this.pacer.observeBudget(used, limit, DAY_MS, () => {
      this.pauseForQuota(`Salesforce API requests for the last 24 hours are spent (${used}/${limit})`, undefined, undefined);
    });
  }

  private pauseForQuota(message: string, httpStatus: number | undefined, crmResponse: JsonValue | undefined): SyncError {
    const until = this.clock.now() + QUOTA_PROBE_MS;
    const make = (retryAt: Date) =>
      new SyncError('quota', message, { retryAt, httpStatus, crmResponse, crmCode: 'REQUEST_LIMIT_EXCEEDED' });
    this.pacer.pauseForQuota(until, make);
    this.logger.warn({ until: new Date(until).toISOString() }, 'Salesforce quota spent; pausing calls');
    return make(new Date(until));
  }

  private throwIfRequestFailed(response: SfResponse): void {
    const { status } = response;
    if (status < 300) return;
    const { code, message } = firstError(response.body);
    const crmResponse = asJson(response.body);
    const now = this.clock.now();
    const retryAfter = parseRetryAfter(response.headers['retry-after'], now);
    if (status === 401) {
      throw new SyncError('auth', `Salesforce refused the session: ${code ?? status}: ${message ?? ''}`.trim(), {
        httpStatus: status,
        crmCode: code,
        crmResponse,
      });
    }
    if (code === 'REQUEST_LIMIT_EXCEEDED') {
      // The same code covers the org's daily TotalRequests (a quota: stop until
      // capacity returns) and ConcurrentPerOrgLongTxn (too many long requests
      // right now: transient).
      if (message !== undefined && /concurren/i.test(message)) {
        const until = retryAfter ?? now + 5_000;
        this.pacer.block(until, 'concurrent request limit');
        throw new SyncError('transient', `REQUEST_LIMIT_EXCEEDED: ${message}`, {
          httpStatus: status,
          crmCode: code,
          crmResponse,
          retryAt: new Date(until),
        });
      }
      throw this.pauseForQuota(`REQUEST_LIMIT_EXCEEDED: ${message ?? 'TotalRequests Limit exceeded.'}`, status, crmResponse);
    }
    if (status === 429 || status === 408 || status >= 500 || (code !== undefined && TRANSIENT_CODES.has(code))) {
      if (retryAfter !== undefined) this.pacer.block(retryAfter, `HTTP ${status} Retry-After`);
      throw new SyncError('transient', `Salesforce answered HTTP ${status}${code !== undefined ? ` ${code}` : ''}${message !== undefined ? `: ${message}` : ''}`, {
        httpStatus: status,
        crmCode: code,
        crmResponse,
        retryAt: retryAfter === undefined ? undefined : new Date(retryAfter),
      });
    }
    if (status === 403) {
      throw new SyncError('auth', `Salesforce refused access: ${code ?? status}: ${message ?? ''}`.trim(), {
        httpStatus: status,
        crmCode: code,
        crmResponse,
      });
    }
  }
}

/** A 4xx answer to one request (not thrown by call()): a rejection of what we sent. */
export function requestError(response: SfResponse): SyncError {
  const { code, message } = firstError(response.body);
  return new SyncError('permanent', `${code ?? `HTTP ${response.status}`}: ${message ?? 'request rejected'}`, {
    httpStatus: response.status,
    crmCode: code,
    crmResponse: asJson(response.body),
  });
}

export function firstError(body: unknown): { code: string | undefined; message: string | undefined } {
  const first: unknown = Array.isArray(body) ? body[0] : body;
  return {
    code: stringField(first, 'errorCode') ?? stringField(first, 'error'),
    message: stringField(first, 'message') ?? stringField(first, 'error_description'),
  };
}
