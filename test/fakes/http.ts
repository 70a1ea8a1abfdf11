import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { http, HttpResponse, type RequestHandler } from 'msw';

/**
 * The plumbing every fake CRM shares. A fake is a plain state class whose
 * `route()` answers one request; this base adds what is not CRM-specific:
 * latency, fault injection, request counters, an observer of each request's
 * phases, per-record write tracking (concurrency), and two ways to serve it:
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
 *  - answer: this exact answer, nothing applied (an error the CRM sends rarely, in its shape)
 */
export type Fault =
  | { type: 'unavailable' }
  | { type: 'rate-limit'; retryAfterSeconds?: number }
  | { type: 'auth' }
  | { type: 'quota' }
  | { type: 'concurrent-limit' }
  | { type: 'row-lock' }
  | { type: 'late'; delayMs: number }
  | { type: 'network' }
  | { type: 'answer'; status: number; body: unknown; headers?: Record<string, string> };

interface ArmedFault<Kind extends string> {
  remaining: number;
  fault: Fault;
  kinds: readonly Kind[] | undefined;
  /** Time-windowed faults (failBetween): active from `from` until `until` (epoch ms), whatever the count. */
  window?: { from: number; until: number };
}

/**
 * What a fake saw of one request, for tests that act at a precise moment
 * (kill a worker once its write is applied) or check timing from the CRM's
 * side (nothing sent before a Retry-After ran out).
 *  - received: the request arrived (before latency and faults);
 *  - applied: the fake has processed it and its state shows whatever it did
 *    (not sent for requests a fault answered instead);
 *  - answered: the answer is about to be sent.
 */
export interface FakeRequestEvent<Kind extends string> {
  phase: 'received' | 'applied' | 'answered';
  kind: Kind;
  /** Date.now() at that moment: comparable with other processes on this machine. */
  at: number;
  /** The external ids of the records a write request carries; empty for reads. */
  externalIds: readonly string[];
  /** 'answered' only: the HTTP status, 0 when the connection is dropped instead. */
  status?: number;
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
  /** Per kind, instead of latencyMs (e.g. slow writes, instant lookups). */
  latencyByKind: Partial<Record<Kind, number>> = {};
  /**
   * Count write requests per record external id (in flight, peak, total):
   * what tests of concurrent workers read. Off by default so the benchmark
   * does not pay for parsing each write twice.
   */
  trackWrites = false;
  private readonly counts = new Map<Kind, number>();
  private faults: Array<ArmedFault<Kind>> = [];
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly observers = new Set<(event: FakeRequestEvent<Kind>) => void>();
  /** Pending latency and 'late' sleeps: close() cuts them short so no timer outlives the fake. */
  private readonly sleepers = new Set<() => void>();
  private readonly writesInFlight = new Map<string, number>();
  private readonly writePeaks = new Map<string, number>();
  private readonly writeTotals = new Map<string, number>();
  private writeRequestsInFlight = 0;
  private writeRequestsPeak = 0;

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
  /** The external ids of the records a request writes (empty for reads); see trackWrites. */
  protected writtenExternalIds(_req: FakeRequest, _kind: Kind): string[] {
    return [];
  }

  /** The next `count` requests (of these kinds, when given) get `fault`. */
  failNext(count: number, fault: Fault, kinds?: Kind | readonly Kind[]): void {
    const list = kinds === undefined ? undefined : typeof kinds === 'string' ? [kinds] : kinds;
    this.faults.push({ remaining: count, fault, kinds: list as readonly Kind[] | undefined });
  }

  /**
   * Every request (of these kinds, when given) received between `from` and
   * `until` (epoch ms) gets `fault`: an outage "for a while", independent of
   * how many requests the clients send meanwhile.
   */
  failBetween(from: number, until: number, fault: Fault, kinds?: Kind | readonly Kind[]): void {
    const list = kinds === undefined ? undefined : typeof kinds === 'string' ? [kinds] : kinds;
    this.faults.push({ remaining: Number.POSITIVE_INFINITY, fault, kinds: list as readonly Kind[] | undefined, window: { from, until } });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Calls `listener` for every request phase (see FakeRequestEvent); answers the unsubscribe. */
  observe(listener: (event: FakeRequestEvent<Kind>) => void): () => void {
    this.observers.add(listener);
    return () => this.observers.delete(listener);
  }

  /** Write requests received that carried this record (trackWrites). */
  writeCount(externalId: string): number {
    return this.writeTotals.get(externalId) ?? 0;
  }

  /** The most write requests ever in flight at once for one record, over all records (trackWrites). */
  maxConcurrentWritesPerRecord(): number {
    let max = 0;
    for (const peak of this.writePeaks.values()) max = Math.max(max, peak);
    return max;
  }

  /** The records that were ever written by two requests at once (trackWrites), for failure messages. */
  recordsWrittenConcurrently(): string[] {
    return [...this.writePeaks].filter(([, peak]) => peak > 1).map(([id]) => id);
  }

  /** The most write requests in flight at once, whatever their records (trackWrites). */
  maxConcurrentWriteRequests(): number {
    return this.writeRequestsPeak;
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
    this.writesInFlight.clear();
    this.writePeaks.clear();
    this.writeTotals.clear();
    this.writeRequestsInFlight = 0;
    this.writeRequestsPeak = 0;
  }

  async handle(req: FakeRequest): Promise<FakeResponse | typeof NETWORK_ERROR> {
    const kind = this.kindOf(req);
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    const watched = this.trackWrites || this.observers.size > 0;
    const externalIds = watched ? [...new Set(this.writtenExternalIds(req, kind))] : [];
    const emit = (phase: FakeRequestEvent<Kind>['phase'], status?: number) => {
      if (this.observers.size === 0) return;
      const event: FakeRequestEvent<Kind> = { phase, kind, at: Date.now(), externalIds, ...(status === undefined ? {} : { status }) };
      for (const observer of this.observers) observer(event);
    };
    this.startWrite(externalIds);
    emit('received');
    try {
      const response = await this.answer(req, kind, () => emit('applied'));
      emit('answered', response === NETWORK_ERROR ? 0 : response.status);
      return response;
    } finally {
      this.endWrite(externalIds);
    }
  }

  private async answer(req: FakeRequest, kind: Kind, applied: () => void): Promise<FakeResponse | typeof NETWORK_ERROR> {
    await this.delay(this.latencyByKind[kind] ?? this.latencyMs);
    const fault = this.takeFault(kind);
    if (fault === undefined) {
      const response = await this.route(req, kind);
      applied();
      return response;
    }
    if (fault.type === 'network') return NETWORK_ERROR;
    if (fault.type === 'answer') return json(fault.status, fault.body, fault.headers ?? {});
    if (fault.type === 'late') {
      const response = await this.route(req, kind);
      applied();
      await this.delay(fault.delayMs);
      return response;
    }
    return this.faultResponse(fault, req, kind);
  }

  private startWrite(externalIds: readonly string[]): void {
    if (!this.trackWrites || externalIds.length === 0) return;
    this.writeRequestsInFlight += 1;
    this.writeRequestsPeak = Math.max(this.writeRequestsPeak, this.writeRequestsInFlight);
    for (const id of externalIds) {
      const inFlight = (this.writesInFlight.get(id) ?? 0) + 1;
      this.writesInFlight.set(id, inFlight);
      this.writePeaks.set(id, Math.max(this.writePeaks.get(id) ?? 0, inFlight));
      this.writeTotals.set(id, (this.writeTotals.get(id) ?? 0) + 1);
    }
  }

  private endWrite(externalIds: readonly string[]): void {
    if (!this.trackWrites || externalIds.length === 0) return;
    this.writeRequestsInFlight -= 1;
    for (const id of externalIds) {
      const inFlight = (this.writesInFlight.get(id) ?? 1) - 1;
      if (inFlight === 0) this.writesInFlight.delete(id);
      else this.writesInFlight.set(id, inFlight);
    }
  }

  private delay(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }

  private takeFault(kind: Kind): Fault | undefined {
    const now = Date.now();
    this.faults = this.faults.filter((f) => f.remaining > 0 && (f.window === undefined || f.window.until > now));
    const armed = this.faults.find(
      (f) => (f.kinds === undefined || f.kinds.includes(kind)) && (f.window === undefined || f.window.from <= now),
    );
    if (armed === undefined) return undefined;
    armed.remaining -= 1;
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
    for (const wake of [...this.sleepers]) wake();
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
