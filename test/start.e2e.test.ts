import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, buildService } from '../src/cli/build';
import { freePort, serviceNodeFlags, waitReady } from '../bench/util';
import { startFakeSalesforce, type StartedFakeSalesforce } from './fakes/salesforce';
import { fixtureJson, fixtureText } from './support/webhooks';

/**
 * What a user does: the bundled service started the way `npm start` starts
 * it (zero configuration but a secret: embedded PGlite in a fresh DATA_DIR),
 * the README's curl of an Enreach sample, the call synced into a CRM (here
 * the simulated Salesforce over real HTTP), and a clean exit on SIGTERM.
 */
describe('npm start (bundled service, embedded database)', () => {
  let dir: string;
  let crm: StartedFakeSalesforce;
  let child: ChildProcess | undefined;
  let port: number;
  let output = '';

  beforeAll(async () => {
    // Inside the package, so the bundle resolves node_modules as dist/ does.
    const cache = path.join(PACKAGE_ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    dir = mkdtempSync(path.join(cache, 'callsync-start-'));
    await buildService(path.join(dir, 'dist'));
    crm = await startFakeSalesforce();
    port = await freePort();
    child = spawn(process.execPath, [...serviceNodeFlags('all'), path.join(dir, 'dist', 'main.js')], {
      cwd: PACKAGE_ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        DATA_DIR: path.join(dir, 'data'),
        ENREACH_SECRET: 'change-me',
        MAPPINGS_WATCH: 'false',
        LOG_LEVEL: 'info',
        ...crm.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    let onExit: ((code: number | null) => void) | undefined;
    const exitedEarly = new Promise<never>((_, reject) => {
      onExit = (code) => reject(new Error(`the service exited with ${code} before it was ready:\n${output}`));
      child?.once('exit', onExit);
    });
    try {
      await Promise.race([waitReady(port, 45_000), exitedEarly]);
    } finally {
      if (onExit) child.off('exit', onExit);
    }
  }, 90_000);

  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await crm?.fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('accepts the README sample, syncs it to the CRM, and exits 0 on SIGTERM', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/webhooks/enreach`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-benemen-token': 'change-me', 'x-benemen-event': 'QueueCallInUserAllocated' },
      body: fixtureText('enreach', 'QueueCallInUserAllocated.json'),
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');

    const callId = String(fixtureJson('enreach', 'QueueCallInUserAllocated.json').CallId);
    await expect
      .poll(() => crm.fake.taskByExternalId(`enreach:${callId}`), { timeout: 15_000, interval: 100 })
      .toMatchObject({ TaskSubtype: 'Call', CallType: 'Inbound' });

    expect(output).toMatch(/"enabled":\["enreach"\]/);
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    child?.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toMatch(/"msg":"stopped"/);
  }, 60_000);
});

describe('the service refuses to start, saying why', () => {
  let dir: string;

  beforeAll(async () => {
    const cache = path.join(PACKAGE_ROOT, 'node_modules', '.cache');
    mkdirSync(cache, { recursive: true });
    dir = mkdtempSync(path.join(cache, 'callsync-refuse-'));
    await buildService(path.join(dir, 'dist'));
  }, 60_000);

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs the bundle to its exit; answers the exit code and everything it printed. */
  function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(dir, 'dist', 'main.js'), ...args], {
        cwd: PACKAGE_ROOT,
        env: { PATH: process.env.PATH ?? '', PORT: '0', LOG_LEVEL: 'info', MAPPINGS_WATCH: 'false', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('exit', (code) => resolve({ code, output }));
    });
  }

  it('a receiver or worker alone on the embedded database', async () => {
    for (const role of ['web', 'worker']) {
      const { code, output } = await run([`--role=${role}`], { DATA_DIR: path.join(dir, `data-${role}`) });
      expect(code).toBe(1);
      expect(output).toContain(`--role=${role} runs part of the service against a shared Postgres: set DATABASE_URL`);
      expect(existsSync(path.join(dir, `data-${role}`))).toBe(false);
    }
  }, 30_000);

  it('invalid mapping files, with file:line:col, before the database is touched', async () => {
    const mappings = path.join(dir, 'mappings');
    cpSync(path.join(PACKAGE_ROOT, 'mappings'), mappings, { recursive: true });
    const file = path.join(mappings, 'webex-cc.yaml');
    writeFileSync(file, readFileSync(file, 'utf8').replace('time: epoch-ms', 'time: epoch_ms'));
    const { code, output } = await run([], { DATA_DIR: path.join(dir, 'data-mappings'), MAPPINGS_DIR: mappings });
    expect(code).toBe(1);
    expect(output).toMatch(/Invalid mapping files:\n.*webex-cc\.yaml:68:\d+ activity\.startedAt\.time: must be one of .*\(got the text "epoch_ms"\)/);
    expect(output).toContain('"msg":"invalid mapping files"');
    expect(existsSync(path.join(dir, 'data-mappings'))).toBe(false);
  }, 30_000);
});
