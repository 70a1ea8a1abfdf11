import { json, type Fault, type FakeRequest, type FakeResponse } from '../http';
import { type SalesforceRequestKind, type FakeSalesforceOptions, parseBody, isObject } from './shapes';
import { SalesforceUpsert } from './upsert';

export class FakeSalesforce extends SalesforceUpsert {
  // ------------------------------------------------------------ plumbing

  protected origins(): string[] {
    return [...new Set([this.instanceUrl, this.loginUrl])];
  }

  protected useBaseUrl(url: string): void {
    this.instanceUrl = url;
    this.loginUrl = url;
  }

  protected kindOf(req: FakeRequest): SalesforceRequestKind {
    const path = req.url.pathname;
    if (path === '/services/oauth2/token') return 'token';
    if (/^\/services\/data\/v\d+\.\d+\/search\/?$/.test(path)) return 'sosl';
    if (/^\/services\/data\/v\d+\.\d+\/query(\/.*)?$/.test(path)) return 'soql';
    if (/^\/services\/data\/v\d+\.\d+\/composite\/sobjects\/\w+\/\w+$/.test(path) && req.method === 'PATCH') return 'upsert';
    if (/^\/services\/data\/v\d+\.\d+\/sobjects\/\w+\/\w+\/[^/]+$/.test(path) && req.method === 'PATCH') return 'upsert-one';
    if (/^\/services\/data\/v\d+\.\d+\/sobjects\/\w+\/\w+$/.test(path) && req.method === 'GET') return 'retrieve';
    return 'other';
  }

  protected override writtenExternalIds(req: FakeRequest, kind: SalesforceRequestKind): string[] {
    if (kind === 'upsert-one') {
      return [decodeURIComponent(req.url.pathname.split('/').pop() ?? '')];
    }
    if (kind !== 'upsert') return [];
    const field = req.url.pathname.split('/').pop() ?? this.externalIdField;
    const body = parseBody(req.body);
    const records = isObject(body) && Array.isArray(body['records']) ? body['records'] : [];
    return records.flatMap((r) => (isObject(r) && typeof r[field] === 'string' ? [r[field]] : []));
  }

  protected faultResponse(fault: Fault, req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    switch (fault.type) {
      case 'auth':
        return json(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
      case 'quota':
        return json(403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], this.limitHeader());
      case 'concurrent-limit':
        return json(403, [{ message: 'ConcurrentPerOrgLongTxn Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }]);
      case 'rate-limit':
        return json(
          429,
          [{ message: 'Too many requests', errorCode: 'REQUEST_LIMIT_EXCEEDED_RATE' }],
          fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) },
        );
      case 'row-lock':
        if (kind === 'upsert') {
          const body = parseBody(req.body);
          const records = isObject(body) && Array.isArray(body['records']) ? body['records'] : [];
          return json(
            200,
            records.map(() => ({
              success: false,
              errors: [{ statusCode: 'UNABLE_TO_LOCK_ROW', message: 'unable to obtain exclusive access to this record', fields: [] }],
            })),
            this.limitHeader(),
          );
        }
        return json(503, [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
      case 'unavailable':
      case 'late':
      case 'network':
      case 'answer':
        return json(503, [{ message: 'Server temporarily unavailable', errorCode: 'SERVER_UNAVAILABLE' }]);
    }
  }

  protected route(req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    if (kind === 'token') return this.token(req);
    if (!req.url.pathname.startsWith('/services/data/')) {
      return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    const auth = req.headers['authorization'] ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!this.sessions.has(token)) {
      return json(401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    this.apiUsage += 1;
    if (this.apiUsage > this.apiDailyLimit) {
      return json(403, [{ message: 'TotalRequests Limit exceeded.', errorCode: 'REQUEST_LIMIT_EXCEEDED' }], this.limitHeader());
    }
    const response = this.routeData(req, kind);
    return { ...response, headers: { ...this.limitHeader(), ...(response.headers ?? {}) } };
  }

  protected routeData(req: FakeRequest, kind: SalesforceRequestKind): FakeResponse {
    const parts = req.url.pathname.split('/').filter((p) => p !== '');
    switch (kind) {
      case 'sosl':
        return this.search(req.url.searchParams.get('q') ?? '');
      case 'soql':
        return this.query(req.url.searchParams.get('q') ?? '');
      case 'upsert': {
        const [, , , , , type = '', field = ''] = parts;
        return this.upsertCollection(type, field, parseBody(req.body));
      }
      case 'upsert-one': {
        const [, , , , type = '', field = '', value = ''] = parts;
        return this.upsertSingle(type, field, decodeURIComponent(value), parseBody(req.body));
      }
      case 'retrieve': {
        const [, , , , type = '', id = ''] = parts;
        const found = this.table(type).get(id);
        if (found === undefined) return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
        return json(200, { attributes: this.attributes(type, id), ...found });
      }
      default:
        return json(404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
  }
}

export interface StartedFakeSalesforce {
  fake: FakeSalesforce;
  url: string;
  /** What a worker process needs to use it: client credentials against the fake. */
  env: Record<string, string>;
}

/**
 * A fake org served over HTTP with a connected app for the client
 * credentials flow, for worker processes and the benchmark:
 *   const { fake, env } = await startFakeSalesforce({ latencyMs: 50 });
 *   spawn('node', [...], { env: { ...process.env, ...env } });
 */
export async function startFakeSalesforce(
  options: FakeSalesforceOptions & { port?: number; latencyMs?: number } = {},
): Promise<StartedFakeSalesforce> {
  const fake = new FakeSalesforce(options);
  fake.latencyMs = options.latencyMs ?? 0;
  const url = await fake.listen(options.port ?? 0);
  fake.registerConnectedApp({ clientId: 'fake-client-id', clientSecret: 'fake-client-secret', runAsUsername: 'integration@callsync.test' });
  return {
    fake,
    url,
    env: {
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: url,
      SALESFORCE_CLIENT_ID: 'fake-client-id',
      SALESFORCE_CLIENT_SECRET: 'fake-client-secret',
      SALESFORCE_EXTERNAL_ID_FIELD: fake.externalIdField,
    },
  };
}
