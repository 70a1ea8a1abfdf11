import { randomUUID } from 'node:crypto';
import { json, type Fault, type FakeRequest, type FakeResponse } from '../http';
import { type HubSpotRequestKind, ASSOCIATION_TYPE, type FakeHubSpotOptions, objectName, parseBody } from './shapes';
import { HubSpotLookups } from './owners-and-properties';

export class FakeHubSpot extends HubSpotLookups {
  // ------------------------------------------------------------ plumbing

  protected origins(): string[] {
    return [this.baseUrl];
  }

  protected useBaseUrl(url: string): void {
    this.baseUrl = url;
  }

  protected kindOf(req: FakeRequest): HubSpotRequestKind {
    const path = req.url.pathname.replace(/\/+$/, '');
    const batch = /^\/crm\/v3\/objects\/[\w-]+\/batch\/(upsert|create|update|read)$/.exec(path);
    if (batch !== null && req.method === 'POST') return batch[1] as HubSpotRequestKind;
    if (/^\/crm\/v3\/objects\/[\w-]+\/search$/.test(path) && req.method === 'POST') return 'search';
    if (path === '/crm/v3/owners' && req.method === 'GET') return 'owners';
    if (/^\/crm\/v4\/associations\/[\w-]+\/[\w-]+\/batch\/associate\/default$/.test(path) && req.method === 'POST') return 'associate';
    if (/^\/crm\/v4\/objects\/[\w-]+\/\d+\/associations\/[\w-]+$/.test(path) && req.method === 'GET') return 'associations';
    if (/^\/crm\/v3\/objects\/[\w-]+\/[^/]+$/.test(path) && req.method === 'GET') return 'get';
    if (/^\/crm\/v3\/properties\/[\w-]+\/[^/]+$/.test(path) && req.method === 'GET') return 'property';
    return 'other';
  }

  protected faultResponse(fault: Fault): FakeResponse {
    switch (fault.type) {
      case 'auth':
        return this.unauthorized();
      case 'quota':
        return json(429, {
          status: 'error',
          message: 'You have reached your daily limit.',
          errorType: 'RATE_LIMIT',
          correlationId: randomUUID(),
          policyName: 'DAILY',
          groupName: 'api-calls-daily',
        }, this.rateHeaders(Date.now()));
      case 'rate-limit':
        return json(
          429,
          {
            status: 'error',
            message: 'You have reached your ten_secondly_rolling limit.',
            errorType: 'RATE_LIMIT',
            correlationId: randomUUID(),
            policyName: 'TEN_SECONDLY_ROLLING',
            groupName: 'api-calls',
          },
          fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) },
        );
      default:
        return json(503, { status: 'error', message: 'Service Unavailable', correlationId: randomUUID(), category: 'SERVICE_UNAVAILABLE' });
    }
  }

  protected route(req: FakeRequest, kind: HubSpotRequestKind): FakeResponse {
    if ((req.headers['authorization'] ?? '') !== `Bearer ${this.accessToken}`) return this.unauthorized();
    const now = Date.now();
    if (kind === 'search') {
      // Search has its own per-second limit and sends no rate-limit headers.
      if (this.searchPerSecond !== undefined) {
        while (this.recentSearches.length > 0 && (this.recentSearches[0] ?? 0) <= now - 1000) this.recentSearches.shift();
        if (this.recentSearches.length >= this.searchPerSecond) {
          return json(429, { status: 'error', message: 'You have reached your secondly limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'SECONDLY' });
        }
        this.recentSearches.push(now);
      }
      return this.search(req);
    }
    while (this.recent.length > 0 && (this.recent[0] ?? 0) <= now - 10_000) this.recent.shift();
    if (this.dailyUsed >= this.dailyLimit) {
      return json(429, { status: 'error', message: 'You have reached your daily limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'DAILY', groupName: 'api-calls-daily' }, this.rateHeaders(now));
    }
    if (this.recent.length >= this.tenSecondLimit) {
      return json(429, { status: 'error', message: 'You have reached your ten_secondly_rolling limit.', errorType: 'RATE_LIMIT', correlationId: randomUUID(), policyName: 'TEN_SECONDLY_ROLLING', groupName: 'api-calls' }, this.rateHeaders(now));
    }
    this.recent.push(now);
    this.dailyUsed += 1;
    const response = this.routeApi(req, kind);
    return { ...response, headers: { ...this.rateHeaders(now), ...(response.headers ?? {}) } };
  }

  protected routeApi(req: FakeRequest, kind: HubSpotRequestKind): FakeResponse {
    const parts = req.url.pathname.replace(/\/+$/, '').split('/').filter((p) => p !== '');
    const body = parseBody(req.body);
    switch (kind) {
      case 'upsert':
        return this.batchUpsert(objectName(parts[3]), body);
      case 'create':
        return this.batchCreate(objectName(parts[3]), body);
      case 'update':
        return this.batchUpdate(objectName(parts[3]), body);
      case 'read':
        return this.batchRead(objectName(parts[3]), body);
      case 'owners':
        return this.listOwners(req.url.searchParams);
      case 'associate':
        return this.associate(objectName(parts[3]), objectName(parts[4]), body);
      case 'associations': {
        const from = objectName(parts[3]);
        const to = objectName(parts[6]);
        const ids = this.associationsOf(from, parts[4] ?? '', to);
        const typeId = ASSOCIATION_TYPE[`${from}:${to}`] ?? 1;
        return json(200, {
          results: ids.map((id) => ({ toObjectId: Number(id), associationTypes: [{ category: 'HUBSPOT_DEFINED', typeId, label: null }] })),
        });
      }
      case 'property':
        return this.property(objectName(parts[3]), decodeURIComponent(parts[4] ?? ''));
      case 'get': {
        const object = objectName(parts[3]);
        const idProperty = req.url.searchParams.get('idProperty');
        const key = decodeURIComponent(parts[4] ?? '');
        const found = idProperty === null ? this.table(object).get(key) : [...this.table(object).values()].find((o) => o.properties[idProperty] === key);
        if (found === undefined) return this.notFound(`Object not found.  objectId are usually numeric.`);
        return json(200, found);
      }
      default:
        return json(404, { status: 'error', message: 'Unable to route request', correlationId: randomUUID(), category: 'OBJECT_NOT_FOUND' });
    }
  }
}

export interface StartedFakeHubSpot {
  fake: FakeHubSpot;
  url: string;
  /** What a worker process needs to use it. */
  env: Record<string, string>;
}

/**
 * A fake portal served over HTTP, for worker processes and the benchmark
 * (raise `tenSecondLimit` there: the default is a real portal's 190 per 10 s).
 */
export async function startFakeHubSpot(options: FakeHubSpotOptions & { port?: number; latencyMs?: number } = {}): Promise<StartedFakeHubSpot> {
  const fake = new FakeHubSpot(options);
  fake.latencyMs = options.latencyMs ?? 0;
  const url = await fake.listen(options.port ?? 0);
  return { fake, url, env: { CRM_TARGET: 'hubspot', HUBSPOT_BASE_URL: url, HUBSPOT_ACCESS_TOKEN: fake.accessToken } };
}
