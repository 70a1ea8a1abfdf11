import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';

/**
 * Worker processes for the reliability tests: the real service
 * (`node --import tsx src/main.ts --role=worker`), each with its own port for
 * /readyz, killed for sure when the test ends (afterEach), and, as a last
 * resort, when the test process exits.
 */

export const ROOT = path.resolve(import.meta.dirname, '../..');

/** Most output kept per process: enough for the last log lines in a failure message. */
const OUTPUT_LIMIT = 64 * 1024;
/** Starting one takes 2-3 s on an idle machine; CI runs other test files beside these on 2 cores. */
const READY_TIMEOUT_MS = 45_000;

export interface WorkerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** Resolves once GET /readyz answers 200; rejects (with the process output) if it exits first. */
  readonly ready: Promise<void>;
  /** Resolves when the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): void;
  /** What it wrote on stdout and stderr (the tail, when long). */
  output(): string;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/** If the test process dies without its afterEach, its workers must not outlive it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

export class WorkerFleet {
  private readonly started: WorkerProcess[] = [];

  /** `env`: what every worker of this fleet gets (database, CRM, knobs); spawn() may add to it. */
  constructor(private readonly env: Record<string, string>) {}

  /** Spawns a worker; it starts claiming as soon as it is up, before `ready` resolves. */
  async spawn(name: string, env: Record<string, string> = {}): Promise<WorkerProcess> {
    const port = await freePort();
    const worker = startProcess(name, port, { ...this.env, ...env });
    this.started.push(worker);
    return worker;
  }

  /** Spawns `count` workers and waits until every one is ready. */
  async spawnReady(count: number, env: Record<string, string> = {}): Promise<WorkerProcess[]> {
    const workers = await Promise.all(Array.from({ length: count }, (_, i) => this.spawn(`worker-${i + 1}`, env)));
    await Promise.all(workers.map((w) => w.ready));
    return workers;
  }

  /** SIGKILLs whatever is still running and waits for it to be gone. */
  async killAll(): Promise<void> {
    const workers = this.started.splice(0);
    for (const w of workers) w.kill('SIGKILL');
    await Promise.all(workers.map((w) => w.exited));
  }

  /** Every worker's output, for a failure message. */
  outputs(): string {
    return this.started.map((w) => `--- ${w.name} (pid ${w.pid}) ---\n${w.output() || '(no output)'}`).join('\n');
  }
}

function startProcess(name: string, port: number, env: Record<string, string>): WorkerProcess {
  installExitHook();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--role=worker'], {
    cwd: ROOT,
    // Nothing inherited but what node and tsx need: the test runner's own
    // variables (LOG_LEVEL=silent, VITEST...) must not change the worker.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      ...(process.env.TMPDIR === undefined ? {} : { TMPDIR: process.env.TMPDIR }),
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      MAPPINGS_WATCH: 'false',
      MAPPINGS_DIR: path.join(ROOT, 'mappings'),
      DATABASE_POOL_SIZE: '5',
      ...env,
      PORT: String(port),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start worker ${name}`);
  live.add(child);

  let output = '';
  const keep = (chunk: Buffer) => {
    output += chunk.toString('utf8');
    if (output.length > OUTPUT_LIMIT) output = output.slice(-OUTPUT_LIMIT);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);

  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = true;
      live.delete(child);
      resolve({ code, signal });
    });
  });

  const ready = (async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (ended) throw new Error(`worker ${name} exited before it was ready:\n${output}`);
      try {
        const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
        if (response.status === 200) return;
      } catch {
        // Not listening yet.
      }
      await sleep(100);
    }
    throw new Error(`worker ${name} was not ready within ${READY_TIMEOUT_MS} ms:\n${output}`);
  })();
  // A worker killed before it was ready is not a failure unless someone waits for it.
  ready.catch(() => {});

  return {
    name,
    pid,
    port,
    ready,
    exited,
    kill(signal) {
      if (!ended) child.kill(signal);
    },
    output: () => output,
  };
}

/** A port nobody listens on right now (the OS picks it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it answers true; fails with `describe()` (and the workers' output) after `timeoutMs`. */
export async function waitUntil(
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs: number; intervalMs?: number; describe: () => Promise<string> | string },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms: ${await options.describe()}`);
    await sleep(options.intervalMs ?? 100);
  }
}
