import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { http, HttpResponse, type RequestHandler } from 'msw';

/**
 * The plumbing every fake CRM shares. A fake is a plain state class whose
 * `route()` answers one request; this base adds what is not CRM-specific:
 * latency, fault injection, request counters, and two ways to serve it:
 *  - `handlers()`: msw handlers for unit tests
 *    (`setupServer(...fake.handlers())`, onUnhandledRequest: 'error');
 *  - `listen()`: a real node:http server, for worker processes and the
 *    benchmark (point SALESFORCE_LOGIN_URL / HUBSPOT_BASE_URL at its URL).
 *    It also answers `GET /__fake/state` with the counters, so a separate
 *    process can read them.
 */

export interface FakeRequest {
  method: string;
  url: URL;
  /** Lower-cased names. */
  headers: Record<string, string>;
  body: string;
}

export interface FakeResponse {
  status: number;
  headers?: Record<string, string>;
  /** Serialised as JSON unless it is a string. */
  body?: unknown;
}

/**
 * What the next matching requests get instead of a normal answer.
 *  - unavailable: 503
 *  - rate-limit: 429 with Retry-After (seconds) when given
 *  - auth: 401 (Salesforce INVALID_SESSION_ID, HubSpot INVALID_AUTHENTICATION)
 *  - quota: Salesforce 403 REQUEST_LIMIT_EXCEEDED (TotalRequests), HubSpot 429 policyName DAILY
 *  - concurrent-limit: Salesforce 403 REQUEST_LIMIT_EXCEEDED (ConcurrentPerOrgLongTxn)
 *  - row-lock: Salesforce upserts answer 200 with UNABLE_TO_LOCK_ROW for every record, nothing applied
 *  - late: the request is applied, then answered after `delayMs` (a client timeout sees nothing)
 *  - network: the connection is dropped without an answer
 */
export type Fault =
  | { type: 'unavailable' }
  | { type: 'rate-limit'; retryAfterSeconds?: number }
  | { type: 'auth' }
  | { type: 'quota' }
  | { type: 'concurrent-limit' }
  | { type: 'row-lock' }
  | { type: 'late'; delayMs: number }
  | { type: 'network' };

interface ArmedFault<Kind extends string> {
  remaining: number;
  fault: Fault;
  kinds: readonly Kind[] | undefined;
}

export const NETWORK_ERROR = Symbol('network-error');

export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): FakeResponse {
  return { status, body, headers };
}

export abstract class FakeCrm<Kind extends string> {
  /** Added to every request before it is answered (the benchmark uses 50). */
  latencyMs = 0;
  private readonly counts = new Map<Kind, number>();
  private faults: Array<ArmedFault<Kind>> = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  /** The origins msw should intercept for this fake. */
  protected abstract origins(): string[];
  /** The counter a request belongs to. */
  protected abstract kindOf(req: FakeRequest): Kind;
  protected abstract route(req: FakeRequest, kind: Kind): FakeResponse | Promise<FakeResponse>;
  /** The answer a fault produces, in this CRM's shapes ('late' and 'network' are handled here). */
  protected abstract faultResponse(fault: Fault, req: FakeRequest, kind: Kind): FakeResponse | Promise<FakeResponse>;
  /** Called with the server's URL when listen() starts. */
  protected abstract useBaseUrl(url: string): void;
  /** A JSON summary for GET /__fake/state. */
  abstract summary(): Record<string, unknown>;

  /** The next `count` requests (of these kinds, when given) get `fault`. */
  failNext(count: number, fault: Fault, kinds?: Kind | readonly Kind[]): void {
    const list = kinds === undefined ? undefined : typeof kinds === 'string' ? [kinds] : kinds;
    this.faults.push({ remaining: count, fault, kinds: list as readonly Kind[] | undefined });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Requests received (faulted ones included), of one kind or in all. */
  requests(kind?: Kind): number {
    if (kind !== undefined) return this.counts.get(kind) ?? 0;
    let total = 0;
    for (const n of this.counts.values()) total += n;
    return total;
  }

  counters(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }

  resetCounters(): void {
    this.counts.clear();
  }

  async handle(req: FakeRequest): Promise<FakeResponse | typeof NETWORK_ERROR> {
    const kind = this.kindOf(req);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    await sleep(this.latencyMs);
    const fault = this.takeFault(kind);
    if (fault === undefined) return this.route(req, kind);
    if (fault.type === 'network') return NETWORK_ERROR;
    if (fault.type === 'late') {
      const response = await this.route(req, kind);
      await sleep(fault.delayMs);
      return response;
    }
    return this.faultResponse(fault, req, kind);
  }

  private takeFault(kind: Kind): Fault | undefined {
    const armed = this.faults.find((f) => f.remaining > 0 && (f.kinds === undefined || f.kinds.includes(kind)));
    if (armed === undefined) return undefined;
    armed.remaining -= 1;
    this.faults = this.faults.filter((f) => f.remaining > 0);
    return armed.fault;
  }

  /** msw handlers for every origin of this fake. */
  handlers(): RequestHandler[] {
    return this.origins().map((origin) =>
      http.all(`${origin}/*`, async ({ request }) => {
        const req: FakeRequest = {
          method: request.method.toUpperCase(),
          url: new URL(request.url),
          headers: Object.fromEntries(request.headers),
          body: await request.text(),
        };
        const response = await this.handle(req);
        if (response === NETWORK_ERROR) return HttpResponse.error();
        const { body, headers } = serialise(response);
        return new HttpResponse(body, { status: response.status, headers });
      }),
    );
  }

  /** Serves the fake over real HTTP; answers its base URL (http://127.0.0.1:<port>). */
  async listen(port = 0, host = '127.0.0.1'): Promise<string> {
    if (this.server !== undefined) throw new Error('already listening');
    const server = createServer((req, res) => {
      void this.serve(req, res);
    });
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('unexpected server address');
    const url = `http://${host}:${address.port}`;
    this.useBaseUrl(url);
    return url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const url = new URL(req.url ?? '/', 'http://fake.local');
      if (req.method === 'GET' && url.pathname === '/__fake/state') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ counters: this.counters(), ...this.summary() }));
        return;
      }
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
      const response = await this.handle({
        method: (req.method ?? 'GET').toUpperCase(),
        url: new URL(url.pathname + url.search, `http://${req.headers.host ?? 'fake.local'}`),
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
      });
      if (response === NETWORK_ERROR) {
        req.socket.destroy();
        return;
      }
      const { body, headers: outHeaders } = serialise(response);
      if (res.destroyed) return;
      res.writeHead(response.status, outHeaders);
      res.end(body);
    } catch (err) {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: err instanceof Error ? err.message : String(err) }));
      }
    }
  }
}

function serialise(response: FakeResponse): { body: string | null; headers: Record<string, string> } {
  const headers = { ...(response.headers ?? {}) };
  if (response.body === undefined || response.status === 204) return { body: null, headers };
  if (typeof response.body === 'string') {
    headers['content-type'] ??= 'text/plain;charset=UTF-8';
    return { body: response.body, headers };
  }
  headers['content-type'] ??= 'application/json;charset=UTF-8';
  return { body: JSON.stringify(response.body), headers };
}
