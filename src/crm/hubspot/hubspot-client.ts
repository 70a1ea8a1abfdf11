import { Client } from '@hubspot/api-client';
import type { Config } from '../../config';
import { SyncError } from '../../core/errors';
import type { JsonValue } from '../../core/json';
import type { Clock } from '../../core/time';
import type { Logger } from '../../log';
import { asJson, isRecord, parseJsonBody, parseRetryAfter, stringField, transportError } from '../engine/classify-errors';
import type { Deadline } from '../engine/deadline';
import { Pacer } from '../engine/pacer';
import { hubspotError } from './hubspot-errors';

/**
 * HubSpot requests: through the SDK's `apiRequest` (its auth, base path and
 * transport; its retries and limiter off, see NOTES.md), paced by our own
 * Pacers (the API's 10-second window, search's per-second limit), within the
 * write's deadline, and classified: a failure of the whole request (token,
 * scopes, rate, quota, server) is thrown as a SyncError, any other answer
 * (2xx, 207, 400, 404, 409) is returned for the caller.
 */

/** Rows per search page. */
export const SEARCH_PAGE = 200;
const SEARCH_MAX_PAGES = 10;
/** HubSpot's daily limit resets at midnight in the portal's time zone, which the API does not tell us: probe hourly. */
const QUOTA_PROBE_MIN_MS = 5 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;

export interface HsResponse {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

export class HubSpotClient {
  readonly pacer: Pacer;
  readonly searchPacer: Pacer;
  private readonly client: Client;

  constructor(
    config: Config,
    accessToken: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {
    this.client = new Client({
      accessToken,
      basePath: config.HUBSPOT_BASE_URL,
      numberOfApiCallRetries: 0,
    });
    // Until the first answer tells us the portal's burst limit, assume the
    // smallest plan's (100 per 10 s).
    this.pacer = new Pacer({
      name: 'HubSpot',
      clock,
      maxConcurrent: 8,
      window: { limit: 100, intervalMs: 10_000 },
      headroom: 0.9,
    });
    // Search is limited separately (about 5 a second per account) and sends
    // no rate-limit headers: stay at HUBSPOT_SEARCH_PER_SECOND (4).
    this.searchPacer = new Pacer({
      name: 'HubSpot search',
      clock,
      maxConcurrent: Math.max(4, Math.min(16, config.HUBSPOT_SEARCH_PER_SECOND)),
      window: { limit: config.HUBSPOT_SEARCH_PER_SECOND, intervalMs: 1_000 },
      headroom: 1,
    });
  }

  /** One request, paced, within the write's deadline; whole-request failures thrown as SyncError. */
  async call(method: 'GET' | 'POST', path: string, body: unknown, deadline: Deadline, kind: 'api' | 'search' = 'api'): Promise<HsResponse> {
    const pacer = kind === 'search' ? this.searchPacer : this.pacer;
    const release = await pacer.acquire(deadline);
    try {
      let status: number;
      let text: string;
      const headers: Record<string, string> = {};
      try {
        const response = await deadline.race(this.client.apiRequest({ method, path, ...(body === undefined ? {} : { body }) }));
        status = response.status;
        response.headers.forEach((value, name) => {
          headers[name.toLowerCase()] = value;
        });
        text = await deadline.race(response.text());
      } catch (err) {
        if (deadline.signal.aborted) throw deadline.signal.reason;
        throw transportError(err, 'HubSpot');
      }
      const response: HsResponse = { status, headers, body: parseJsonBody(text) };
      if (kind === 'api') this.observe(response);
      this.throwIfRequestFailed(response, kind);
      return response;
    } finally {
      release();
    }
  }

  /** Every page (up to SEARCH_MAX_PAGES) of a CRM search. */
  async searchAll(object: string, body: (after?: string) => unknown, deadline: Deadline): Promise<Array<Record<string, unknown>>> {
    const rows: Array<Record<string, unknown>> = [];
    let after: string | undefined;
    for (let page = 0; page < SEARCH_MAX_PAGES; page += 1) {
      const response = await this.call('POST', `/crm/v3/objects/${object}/search`, body(after), deadline, 'search');
      if (response.status !== 200) throw hubspotError(response.body, response.status);
      const answer = isRecord(response.body) ? response.body : {};
      rows.push(...(Array.isArray(answer['results']) ? answer['results'].filter(isRecord) : []));
      const paging = answer['paging'];
      after = isRecord(paging) ? stringField(paging['next'], 'after') : undefined;
      if (after === undefined) break;
    }
    return rows;
  }

  private observe(response: HsResponse): void {
    const h = response.headers;
    const max = Number(h['x-hubspot-ratelimit-max']);
    const remaining = Number(h['x-hubspot-ratelimit-remaining']);
    const interval = Number(h['x-hubspot-ratelimit-interval-milliseconds']);
    if (Number.isFinite(max) && Number.isFinite(remaining) && Number.isFinite(interval)) this.pacer.observeWindow(max, remaining, interval);
    const dailyRemaining = h['x-hubspot-ratelimit-daily-remaining'];
    if (dailyRemaining !== undefined && Number(dailyRemaining) <= 0) {
      this.pauseForQuota(`HubSpot daily API limit spent (${h['x-hubspot-ratelimit-daily'] ?? '?'} requests)`, undefined, undefined, undefined);
    }
  }

  private pauseForQuota(message: string, retryAfter: number | undefined, httpStatus: number | undefined, crmResponse: JsonValue | undefined): SyncError {
    const now = this.clock.now();
    const until = retryAfter ?? nextHourlyProbe(now);
    const make = (retryAt: Date) => new SyncError('quota', message, { retryAt, httpStatus, crmResponse, crmCode: 'DAILY' });
    this.pacer.pauseForQuota(until, make);
    this.logger.warn({ until: new Date(until).toISOString() }, 'HubSpot daily quota spent; pausing calls');
    return make(new Date(until));
  }

  private throwIfRequestFailed(response: HsResponse, kind: 'api' | 'search'): void {
    const { status, body, headers } = response;
    if (status < 300 || status === 207) return;
    const now = this.clock.now();
    const retryAfter = parseRetryAfter(headers['retry-after'], now);
    const crmResponse = asJson(body);
    const category = stringField(body, 'category');
    const policy = stringField(body, 'policyName');
    const message = stringField(body, 'message') ?? `HTTP ${status}`;
    if (status === 401 || status === 403) {
      throw new SyncError('auth', `HubSpot refused the access token: ${category ?? status}: ${message}`, { httpStatus: status, crmCode: category, crmResponse });
    }
    if (status === 429 && policy === 'DAILY') {
      throw this.pauseForQuota(`HubSpot daily API limit reached: ${message}`, retryAfter, status, crmResponse);
    }
    if (status === 429 || status === 423 || status === 477 || status === 408 || status >= 500) {
      // Without Retry-After: the 10-second window needs up to its interval to
      // free a slot, a per-second (search) limit a second, 423 Locked two.
      const fallback =
        status === 423 ? 2_000 : status === 429 && (policy === 'TEN_SECONDLY_ROLLING' || policy === undefined) && kind === 'api' ? 10_000 : status === 429 ? 1_000 : 0;
      const until = retryAfter ?? (fallback > 0 ? now + fallback : undefined);
      if (until !== undefined) (kind === 'search' ? this.searchPacer : this.pacer).block(until, `HTTP ${status}${policy === undefined ? '' : ` ${policy}`}`);
      throw new SyncError('transient', `HubSpot answered HTTP ${status}${policy === undefined ? '' : ` ${policy}`}: ${message}`, {
        httpStatus: status,
        crmCode: policy ?? category ?? `HTTP_${status}`,
        crmResponse,
        retryAt: until === undefined ? undefined : new Date(until),
      });
    }
  }
}

function nextHourlyProbe(now: number): number {
  const next = Math.ceil((now + 1) / HOUR_MS) * HOUR_MS;
  return next - now < QUOTA_PROBE_MIN_MS ? next + HOUR_MS : next;
}
