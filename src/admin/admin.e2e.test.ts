import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testConfig } from '../../test/support/config';
import { SalesforceTarget } from '../crm/salesforce/salesforce-target';
import { createApp } from '../http/app';
import { createLogger } from '../log';
import type { MappingStore } from '../mapping';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { SyncWorker } from '../worker/loop';
import { startFakeSalesforce, type FakeSalesforce } from '../../test/fakes/salesforce';
import { SECRETS } from '../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../test/support/db';
import { mountAdmin } from './index';
import { CALL_RESULT_RULE, addHccDispositionLabel, copyShippedMappings, postHccCall, seedHccOrg } from '../../test/support/admin-setup';
import { ADMIN_TOKEN, fastWorkerConfig } from '../../test/support/admin';

/**
 * The admin's promise, end to end in a real browser on the real stack: HCC
 * webhooks through the intake, the shipped YAML mappings (a copy RevOps can
 * edit) behind the MappingStore, the worker woken by NOTIFY with the
 * Salesforce target, and the Salesforce fake served over HTTP.
 *
 * A disposition code the value table lacks gives a Task whose Call Result
 * is the bare code, and the org's validation rule rejects it. The admin logs
 * in, finds the failed call and sees why; RevOps adds the code to the table;
 * the admin replays the call (and a second one in bulk, through the
 * confirmation step) and watches both reach the org with the label.
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
  let mappings: Awaited<ReturnType<typeof copyShippedMappings>> | undefined;
  let store: MappingStore;
  let fake: FakeSalesforce;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
    mappings = await copyShippedMappings(logger);
    store = mappings.store;
    const started = await startFakeSalesforce();
    fake = started.fake;
    seedHccOrg(fake);

    const config = testConfig({ ...SECRETS, ADMIN_TOKEN, ...started.env });
    const target = new SalesforceTarget(config, logger);
    const metrics = new Metrics();
    ingest = new IngestQueue(testDb.database, { maxBatch: 50, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
    app = createApp({
      config,
      database: testDb.database,
      logger,
      metrics,
      ingest,
      mappings: store,
      mount: (a) => mountAdmin(a, { config, database: testDb.database, logger, mappings: store, target }),
    });
    worker = new SyncWorker({
      database: testDb.database,
      mappings: store,
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
    await fake?.close();
    await mappings?.remove();
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

  it('logs in, finds the failed sync and why, replays it after the mapping fix and watches it reach the org', async () => {
    // Three calls: one with a code the value table knows, two with one it lacks.
    await postHccCall(app, 9_300_001, 51);
    await postHccCall(app, 9_300_002, 77);
    await postHccCall(app, 9_300_003, 77);
    await expect.poll(async () => [await statusOf('9300001'), await statusOf('9300002'), await statusOf('9300003')], { timeout: 15_000, interval: 100 }).toEqual([
      'synced',
      'failed',
      'failed',
    ]);
    // The worker may have written the call from its first webhooks already (an In Progress Task); the final state never got in.
    expect(fake.taskByExternalId('hcc:9300002')?.['CallDisposition'] ?? null).toBeNull();

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
    expect(dashboard).toContain('9300002');
    expect(dashboard).toContain('9300003');
    expect(dashboard).not.toContain('9300001');
    expect(await page.locator('th[data-count="failed"]').innerText()).toBe('2');

    // The detail says why: the org's validation rule, on the bare code the mapping gave.
    await Promise.all([page.waitForURL(/\/admin\/ui\/syncs\/\d+$/), page.click('a:text-is("9300002")')]);
    expect(await page.locator('#sync-status').getAttribute('data-status')).toBe('failed');
    expect(await page.locator('#last-error').innerText()).toContain(CALL_RESULT_RULE);
    expect(await page.locator('main').innerText()).toContain('"agent_disp": 77');
    expect(await page.locator('main').textContent()).toContain('"dispositionLabel": "77"');

    // RevOps adds the code to the value table; the store reloads the edited file.
    addHccDispositionLabel(mappings?.dir ?? '', 77, 'Left voicemail');
    expect(await store.reload()).toBe(true);
    await page.reload();
    // The preview sits in a collapsed <details>: its text is there, not rendered.
    expect(await page.locator('main').textContent()).toContain('"dispositionLabel": "Left voicemail"');

    // The replay goes through and the worker writes the corrected Task.
    await Promise.all([page.waitForURL(/notice=replayed$/), page.click('button:text("Replay with the current mappings")')]);
    expect(await page.locator('p.banner.ok').innerText()).toContain('Queued for replay with the current mappings.');
    await pollPage(page, async () => (await page.locator('#sync-status').getAttribute('data-status')) === 'synced');
    const task = fake.taskByExternalId('hcc:9300002');
    expect(task).toMatchObject({ CallDisposition: 'Left voicemail', Subject: 'Outbound call – Left voicemail', Status: 'Completed' });
    expect(await page.locator('#crm-id').innerText()).toBe(task?.Id);

    // The other failed call goes in bulk, behind a confirmation step.
    await page.goto(`${baseUrl}/admin`);
    expect(await page.locator('main').innerText()).toContain('9300003');
    await Promise.all([page.waitForURL(/\/admin\/ui\/replay\?/), page.click('button:text("Replay all matching failed syncs")')]);
    expect(await page.locator('h1').innerText()).toBe('Replay 1 call?');
    expect(await statusOf('9300003')).toBe('failed');
    await Promise.all([page.waitForURL(/notice=bulk/), page.click('button:text("Yes, replay 1 call")')]);
    expect(await page.locator('p.banner.ok').innerText()).toContain('Queued 1 call for replay.');
    await page.goto(`${baseUrl}/admin?status=synced`);
    await pollPage(page, async () => (await page.locator('table[aria-label="Syncs"]').innerText().catch(() => '')).includes('9300003'));
    expect(fake.taskByExternalId('hcc:9300003')).toMatchObject({ CallDisposition: 'Left voicemail' });
    expect(await page.locator('th[data-count="failed"]').innerText()).toBe('0');
    expect(fake.tasks()).toHaveLength(3);

    // Every action is in the trail, as done from the page; each showing of the detail is a view.
    const audit = await testDb.database.query<{ action: string; via: string; ip: string | null }>(`SELECT action, via, ip FROM admin_audit ORDER BY id`);
    expect(audit.map((a) => a.action).filter((a) => a !== 'sync.view')).toEqual(['session.login', 'sync.replay', 'syncs.replay.dry_run', 'syncs.replay']);
    expect(audit.filter((a) => a.action === 'sync.view').length).toBeGreaterThanOrEqual(3);
    expect(new Set(audit.map((a) => `${a.via} ${a.ip}`))).toEqual(new Set(['page 127.0.0.1']));

    // Logging out ends the session server-side: the browser's old cookie, put back, is refused.
    await Promise.all([page.waitForURL(/\/admin\/login\?bye=1$/), page.click('button:text("Log out")')]);
    if (session) await context.addCookies([session]);
    await page.goto(`${baseUrl}/admin`);
    expect(new URL(page.url()).pathname).toBe('/admin/login');
    await page.close();
  }, 60_000);
});
