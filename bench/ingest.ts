import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { build } from 'esbuild';
import postgres from 'postgres';
import { runLoad, type LoadResult } from './load';
import { SECRETS, requestFactory } from './requests';
import { ROOT, freePort, serviceNodeFlags, freshDatabase, sampleRss, startBundledService, stopProcess, waitReady } from './util';

/**
 * npm run bench:ingest
 *
 * Starts the service (--role=web, bundled and run exactly as `npm run
 * start:web` does) on a fresh Postgres database and drives it
 * with concurrent POSTs of realistic bodies from all five sources (about 5%
 * re-deliveries), then drives a bare reference handler (Hono + postgres.js,
 * one INSERT per request, no auth, no dedupe) the same way. Prints
 * requests/s, p50, p99 and peak RSS for both, and the ratio.
 *
 * BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test),
 * BENCH_CONNECTIONS (50), BENCH_SECONDS (10), BENCH_WARMUP_SECONDS (2).
 */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);

async function measure(
  label: string,
  start: (env: Record<string, string>) => Promise<ChildProcess>,
): Promise<{ load: LoadResult; rss: number; stored: number }> {
  const db = await freshDatabase('callsync_bench_ingest');
  const port = await freePort();
  const child = await start({ DATABASE_URL: db.url, PORT: String(port), LOG_LEVEL: 'warn' });
  try {
    await waitReady(port);
    const rss = sampleRss(child.pid ?? 0);
    process.stdout.write(`${label}: ${CONNECTIONS} connections, ${WARMUP_SECONDS}s warm-up, ${SECONDS}s measured...\n`);
    const load = await runLoad({ port, connections: CONNECTIONS, durationMs: SECONDS * 1000, warmupMs: WARMUP_SECONDS * 1000, next: requestFactory() });
    const maxRss = rss.stop();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const table = label === 'service' ? 'webhook_events' : 'bare_events';
    const [row] = await sql.unsafe<Array<{ n: string }>>(`SELECT count(*) AS n FROM ${table}`);
    await sql.end();
    return { load, rss: maxRss, stored: Number(row?.n ?? 0) };
  } finally {
    await stopProcess(child);
    await db.drop();
  }
}

const fmt = (n: number, digits = 1) => n.toFixed(digits);

// Both run as plain JavaScript bundles with the same Node flags.
const service = await measure('service', (env) => startBundledService('web', { ...env, ...SECRETS, MAPPINGS_WATCH: 'false' }));
const bare = await measure('bare', async (env) => {
  const file = path.join(ROOT, 'dist', 'bench-bare-handler.js');
  await build({ absWorkingDir: ROOT, entryPoints: ['bench/bare-handler.ts'], outfile: file, bundle: true, format: 'esm', platform: 'node', target: 'node20', packages: 'external', logLevel: 'warning' });
  return spawn(process.execPath, [...serviceNodeFlags('web'), file], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'inherit', 'inherit'] });
});

const rows = [
  ['', 'requests/s', 'p50 ms', 'p99 ms', 'max ms', 'non-200', 'peak RSS MB', 'rows stored'],
  ['service', fmt(service.load.rps, 0), fmt(service.load.p50, 2), fmt(service.load.p99, 2), fmt(service.load.max, 1), String(service.load.errors), fmt(service.rss, 0), String(service.stored)],
  ['bare handler', fmt(bare.load.rps, 0), fmt(bare.load.p50, 2), fmt(bare.load.p99, 2), fmt(bare.load.max, 1), String(bare.load.errors), fmt(bare.rss, 0), String(bare.stored)],
];
const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
for (const row of rows) process.stdout.write(`${row.map((cell, i) => cell.padStart(widths[i] ?? 0)).join('  ')}\n`);
// Only 200s count as accepted webhooks: a run answering 401s or 503s fast must not pass.
const accepted = (r: LoadResult) => (r.requests - r.errors) / r.seconds;
const ratio = accepted(service.load) / accepted(bare.load);
process.stdout.write(`accepted/s: service ${fmt(accepted(service.load), 0)}, bare ${fmt(accepted(bare.load), 0)}; ratio service/bare: ${fmt(ratio, 2)}\n`);
process.stdout.write(
  `targets: >= 5000 accepted/s ${accepted(service.load) >= 5000 ? 'OK' : 'MISSED'}, p99 <= 25 ms ${service.load.p99 <= 25 ? 'OK' : 'MISSED'}, ` +
    `ratio >= 1.0 ${ratio >= 1 ? 'OK' : 'MISSED'}, RSS <= 150 MB ${service.rss <= 150 ? 'OK' : 'MISSED'}\n`,
);
