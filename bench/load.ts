import http from 'node:http';

export interface LoadResult {
  requests: number;
  errors: number;
  statuses: Record<number, number>;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  max: number;
}

export interface PreparedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * A closed-loop load generator: `connections` keep-alive connections, each
 * sending its next request as soon as the previous answer arrives. Latency
 * is measured per request from write to the end of the response.
 */
export async function runLoad(options: {
  port: number;
  connections: number;
  durationMs: number;
  warmupMs: number;
  next: () => PreparedRequest;
}): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let errors = 0;
  let measuring = false;
  let stop = false;
  const started = { at: 0 };

  const send = (req: PreparedRequest) =>
    new Promise<number>((resolve) => {
      const r = http.request(
        {
          agent,
          host: '127.0.0.1',
          port: options.port,
          method: 'POST',
          path: req.path,
          headers: { ...req.headers, 'content-length': Buffer.byteLength(req.body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('error', () => resolve(-1));
      r.end(req.body);
    });

  const loop = async () => {
    while (!stop) {
      const req = options.next();
      const t0 = performance.now();
      const status = await send(req);
      const elapsed = performance.now() - t0;
      if (!measuring) continue;
      latencies.push(elapsed);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status !== 200) errors += 1;
    }
  };

  const loops = Array.from({ length: options.connections }, loop);
  await new Promise((r) => setTimeout(r, options.warmupMs));
  measuring = true;
  started.at = performance.now();
  await new Promise((r) => setTimeout(r, options.durationMs));
  measuring = false;
  const seconds = (performance.now() - started.at) / 1000;
  stop = true;
  await Promise.all(loops);
  agent.destroy();

  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((latencies.length * p) / 100))] ?? 0;
  return {
    requests: latencies.length,
    errors,
    statuses,
    seconds,
    rps: latencies.length / seconds,
    p50: pct(50),
    p99: pct(99),
    max: latencies[latencies.length - 1] ?? 0,
  };
}
