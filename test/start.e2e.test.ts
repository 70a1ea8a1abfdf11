import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PACKAGE_ROOT, buildService } from '../src/cli/build';
import { freePort, serviceNodeFlags, waitReady } from '../bench/util';
import { startFakeSalesforce, type StartedFakeSalesforce } from './fakes/salesforce';
import { fixtureJson, fixtureText } from './helpers/webhooks';

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
