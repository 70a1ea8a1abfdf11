import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../config';
import { createApp } from '../http/app';
import { createLogger } from '../log';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { SyncWorker } from '../worker/worker';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/helpers/db';
import { MemoryTarget } from '../../test/helpers/memory-target';
import { mountAdmin } from './index';
import { ADMIN_TOKEN, FixableMappings, fastWorkerConfig, newEvent } from './testing';

/**
 * The admin's promise, end to end in a real browser: a call fails because of
 * a mapping bug; the admin logs in, finds it and sees why; RevOps fixes the
 * mapping; the admin replays it (and a second one in bulk, through the
 * confirmation step) and watches it reach the CRM with the corrected values.
 *
 * Everything is real except the CRM (an in-memory target) and the mapping
 * files (a mapping with a fixable value table): HTTP server, database,
 * worker woken by NOTIFY, Chromium.
 */

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

describe.each(testDbKinds())('admin page end to end in Chromium on %s', (kind) => {
  const logger = createLogger({ level: 'silent' });
  let testDb: TestDatabase;
  let server: ServerType;
  let baseUrl: string;
  let worker: SyncWorker;
  let ingest: IngestQueue;
  let context: BrowserContext;
  let userDataDir: string;
  const mappings = new FixableMappings();
  const target = new MemoryTarget();

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    const config = testConfig({ ADMIN_TOKEN });
    const metrics = new Metrics();
    ingest = new IngestQueue(testDb.database, { maxBatch: 50, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
    const app = createApp({
      config,
      database: testDb.database,
      logger,
      metrics,
      ingest,
      mappings: { current: () => mappings },
      mount: (a) => mountAdmin(a, { config, database: testDb.database, logger, mappings: { current: () => mappings }, target }),
    });
    worker = new SyncWorker({
      database: testDb.database,
      mappings: { current: () => mappings },
      target,
      config: fastWorkerConfig({ SYNC_POLL_MS: 500 }),
      logger,
      metrics,
    });
    await worker.start();
    const port = await new Promise<number>((resolve, reject) => {
      server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => resolve(info.port));
      server.once('error', reject);
    });
    baseUrl = `http://127.0.0.1:${port}`;
    userDataDir = mkdtempSync(path.join(os.tmpdir(), 'callsync-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    context.setDefaultTimeout(10_000);
  });

  afterAll(async () => {
    await context?.close();
    await worker?.stop(1_000);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await testDb?.drop();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  const statusOf = async (callKey: string) =>
    (await testDb.database.query<{ status: string }>(`SELECT status FROM call_syncs WHERE call_key = $1`, [callKey]))[0]?.status;

  /** Reloads the page until `done` holds: the admin watching a sync. */
  async function pollPage(page: Page, done: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`the page did not show the expected state within ${timeoutMs} ms: ${await page.locator('main').innerText()}`);
      await new Promise((r) => setTimeout(r, 250));
      await page.reload();
    }
  }

  it('logs in, finds the failed sync and why, replays it after the mapping fix and watches it succeed', async () => {
    // Three calls: one the mapping handles, two with a disposition code the value table lacks.
    await Promise.all([
      ingest.submit(newEvent('e2e-ok', 'call-ended', { disposition: 'SALE' })),
      ingest.submit(newEvent('e2e-one', 'call-created')),
      ingest.submit(newEvent('e2e-one', 'call-ended', { disposition: 'CALLBACK' })),
      ingest.submit(newEvent('e2e-two', 'call-ended', { disposition: 'CALLBACK' })),
    ]);
    await expect.poll(async () => [await statusOf('e2e-ok'), await statusOf('e2e-one'), await statusOf('e2e-two')], { timeout: 10_000, interval: 100 }).toEqual([
      'synced',
      'failed',
      'failed',
    ]);
    expect(target.records.has('hcc:e2e-one')).toBe(false);

    const page = await context.newPage();

    // Log in through the form.
    await page.goto(`${baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await Promise.all([page.waitForURL(`${baseUrl}/admin`), page.click('button[type="submit"]')]);
    const cookies = await context.cookies(`${baseUrl}/admin`);
    const session = cookies.find((c) => c.name === 'callsync_admin');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/admin' });
    expect(session?.value).not.toContain(ADMIN_TOKEN);

    // The dashboard opens on the failed list.
    const dashboard = await page.locator('main').innerText();
    expect(dashboard).toContain('Failed syncs');
    expect(dashboard).toContain('e2e-one');
    expect(dashboard).toContain('e2e-two');
    expect(dashboard).not.toContain('e2e-ok');
    expect(await page.locator('th[data-count="failed"]').innerText()).toBe('2');

    // The detail says why.
    await Promise.all([page.waitForURL(/\/admin\/ui\/syncs\/\d+$/), page.click('a:text-is("e2e-one")')]);
    expect(await page.locator('#sync-status').getAttribute('data-status')).toBe('failed');
    expect(await page.locator('#last-error').innerText()).toContain('disposition: no label for code "CALLBACK" in the value table');
    expect(await page.locator('main').innerText()).toContain('"disposition": "CALLBACK"');

    // Replaying before the fix is refused and queues nothing.
    await Promise.all([page.waitForURL(/refused=mapping$/), page.click('button:text("Replay with the current mappings")')]);
    expect(await page.locator('p.banner.bad[role="alert"]').innerText()).toContain('Not queued: the current mappings still fail on this call');
    expect(await statusOf('e2e-one')).toBe('failed');

    // RevOps fixes the mapping; the replay now goes through and the worker syncs it.
    mappings.fix('CALLBACK', 'Callback requested');
    await page.reload();
    expect(await page.locator('main').innerText()).toContain('fold this call without error');
    await Promise.all([page.waitForURL(/notice=replayed$/), page.click('button:text("Replay with the current mappings")')]);
    expect(await page.locator('p.banner.ok').innerText()).toContain('Queued for replay with the current mappings.');
    await pollPage(page, async () => (await page.locator('#sync-status').getAttribute('data-status')) === 'synced');
    const crmId = target.records.get('hcc:e2e-one')?.id;
    expect(crmId).toBeDefined();
    expect(await page.locator('#crm-id').innerText()).toBe(crmId);
    expect(target.records.get('hcc:e2e-one')?.fields).toMatchObject({ CallDisposition: 'Callback requested', Subject: 'Call: Callback requested' });

    // The other failed call goes in bulk, behind a confirmation step.
    await page.goto(`${baseUrl}/admin`);
    expect(await page.locator('main').innerText()).toContain('e2e-two');
    await Promise.all([page.waitForURL(/\/admin\/ui\/replay\?/), page.click('button:text("Replay all matching failed syncs")')]);
    expect(await page.locator('h1').innerText()).toBe('Replay 1 call?');
    expect(await statusOf('e2e-two')).toBe('failed');
    await Promise.all([page.waitForURL(/notice=bulk/), page.click('button:text("Yes, replay 1 call")')]);
    expect(await page.locator('p.banner.ok').innerText()).toContain('Queued 1 call for replay.');
    await page.goto(`${baseUrl}/admin?status=synced`);
    await pollPage(page, async () => (await page.locator('table[aria-label="Syncs"]').innerText().catch(() => '')).includes('e2e-two'));
    expect(target.records.get('hcc:e2e-two')?.fields).toMatchObject({ CallDisposition: 'Callback requested' });
    expect(await page.locator('th[data-count="failed"]').innerText()).toBe('0');

    // Every action is in the trail, as done from the page.
    const audit = await testDb.database.query<{ action: string; via: string; ip: string | null }>(`SELECT action, via, ip FROM admin_audit ORDER BY id`);
    expect(audit.map((a) => a.action)).toEqual(['session.login', 'sync.replay', 'sync.replay', 'syncs.replay.dry_run', 'syncs.replay']);
    expect(
      (await testDb.database.query<{ outcome: string }>(`SELECT details->>'outcome' AS outcome FROM admin_audit WHERE action = 'sync.replay' ORDER BY id`)).map(
        (r) => r.outcome,
      ),
    ).toEqual(['refused', 'queued']);
    expect(new Set(audit.map((a) => `${a.via} ${a.ip}`))).toEqual(new Set(['page 127.0.0.1']));
    await page.close();
  }, 60_000);
});
