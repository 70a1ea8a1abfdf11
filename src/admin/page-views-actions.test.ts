import { beforeEach, describe, expect, it } from 'vitest';
import { type Config } from '../config';
import { testConfig } from '../../test/support/config';
import type { createApp } from '../http/app';
import type { Database } from '../db/client';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { ADMIN_TOKEN, FixableMappings, auditRows, callRow, eventStatuses, seedCall } from '../../test/support/admin';
import { CONN, ORIGIN, buildAdminPageApp, pageGet, pageLogin, pagePost, visible } from '../../test/support/admin-page';

describe.each(testDbKinds())('admin page on %s', (kind) => {
  let testDb: TestDatabase;
  let mappings: FixableMappings;
  let clock: Date;
  let app: ReturnType<typeof createApp>;

  const db = useAdminTestDatabase(kind);
  beforeEach(() => {
    testDb = db();
    mappings = new FixableMappings();
    clock = new Date();
    app = buildApp(testConfig({ ADMIN_TOKEN }));
  });

  function buildApp(config: Config, database: Database = testDb.database) {
    return buildAdminPageApp({ config, database, ingestDatabase: testDb.database, mappings, now: () => clock });
  }

  const get = (path: string, cookie?: string) => pageGet(app, path, cookie);
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}, conn: typeof CONN = CONN) => pagePost(app, path, form, headers, conn);
  const login = () => pageLogin(app);

  describe('views and actions', () => {
    it('shows counts by status and source and the failed list, escaping what vendors sent', async () => {
      const bad = await seedCall(testDb.database, { callKey: '<script>alert(1)</script>', status: 'failed', attempts: 2, lastError: 'disposition: no label for "X"' });
      await seedCall(testDb.database, { callKey: 'ok1', status: 'synced' });
      await seedCall(testDb.database, { source: 'enreach', callKey: 'p1', status: 'pending' });
      const { cookie } = await login();
      const res = await get('/admin', cookie);
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      );
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      const html = await res.text();
      expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
      expect(html).not.toContain('<script>alert(1)</script>');
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      const text = visible(html);
      expect(text).toContain('Source pending synced failed discarded total enreach 1 0 0 0 1 hcc 0 1 1 0 2 all sources 1 1 1 0 3');
      expect(text).toContain('Failed syncs');
      expect(html).toContain(`<a href="/admin/ui/syncs/${bad}">`);
      expect(text).toContain('[mapping] disposition: no label for "X"');
      expect(text).not.toContain('ok1');
      expect(visible(await (await get('/admin?status=', cookie)).text())).toContain('ok1');

      const css = await get('/admin/assets/admin.css');
      expect([css.status, css.headers.get('content-type')]).toEqual([200, 'text/css; charset=utf-8']);
    });

    it('answers an HTML error page, not a stack trace, when the database fails', async () => {
      const { cookie } = await login();
      await testDb.database.query('ALTER TABLE admin_audit RENAME TO admin_audit_away');
      try {
        const res = await get('/admin', cookie);
        expect(res.status).toBe(500);
        const text = visible(await res.text());
        expect(text).toMatch(/The server could not show this page; see its log for request \S+\./);
        expect(text).not.toContain('admin_audit');
      } finally {
        await testDb.database.query('ALTER TABLE admin_audit_away RENAME TO admin_audit');
      }
    });

    it('refuses an oversized form', async () => {
      const { cookie, csrf } = await login();
      const res = await post('/admin/ui/replay', { _csrf: csrf, status: 'failed', pad: 'x'.repeat(20_000) }, { origin: ORIGIN, cookie });
      expect(res.status).toBe(413);
      expect(visible(await res.text())).toContain('The form is larger than the admin page ever sends.');
    });

    it('explains a bad filter instead of listing', async () => {
      const { cookie } = await login();
      const res = await get('/admin?status=failed&since=yesterday', cookie);
      expect(res.status).toBe(400);
      expect(visible(await res.text())).toContain('since: expected a relative time such as 30m, 2h or 7d');
      for (const [query, message] of [
        ['since=999999w', 'since: goes too far back: a relative time reaches at most 3650d (10 years)'],
        ['until=0000-01-01', 'until: is out of range: times must fall between 1970-01-01 and 9999-12-31'],
        ['q=%00', 'q: must not contain control characters'],
      ] as const) {
        const bad = await get(`/admin?status=failed&${query}`, cookie);
        expect(bad.status, query).toBe(400);
        expect(visible(await bad.text()), query).toContain(message);
      }
      const bulk = await get('/admin/ui/replay?status=failed&since=999999w', cookie);
      expect(bulk.status).toBe(400);
      expect(visible(await bulk.text())).toContain('since: goes too far back');
    });

    it('answers 503 with an HTML page when the database cannot be reached', async () => {
      const { cookie } = await login();
      const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      app = buildApp(testConfig({ ADMIN_TOKEN }), { ...testDb.database, query: () => Promise.reject(down), transaction: () => Promise.reject(down) });
      const res = await get('/admin', cookie);
      expect(res.status).toBe(503);
      expect(visible(await res.text())).toContain('The database cannot be reached right now; reload the page in a moment.');
    });

    it('pages through a long list', async () => {
      for (let i = 0; i < 53; i += 1) await seedCall(testDb.database, { callKey: `many-${i}`, status: 'failed', updatedAtOffset: -i });
      const { cookie } = await login();
      const first = await (await get('/admin', cookie)).text();
      expect(first.match(/data-sync-id=/g)).toHaveLength(50);
      const next = /<a href="([^"]+)" rel="next">/.exec(first)?.[1]?.replace(/&amp;/g, '&');
      expect(next).toMatch(/^\/admin\?status=failed&cursor=/);
      const second = await (await get(next ?? '', cookie)).text();
      expect(second.match(/data-sync-id=/g)).toHaveLength(3);
      expect(visible(second)).toContain('many-52');
      expect(second).not.toContain('rel="next"');
    });

    it('shows a sync in detail and replays it after the mapping is fixed', async () => {
      const id = await seedCall(testDb.database, {
        callKey: 'call-7',
        status: 'failed',
        attempts: 1,
        lastError: 'mapping failed: disposition: no label for code "NOSALE" in the value table',
        payload: { disposition: 'NOSALE', agent: 'ann@example.com' },
        events: ['failed'],
      });
      await testDb.database.query(
        `INSERT INTO sync_attempts (call_sync_id, attempt, target, worker_id, started_at, outcome, error_kind, error, http_status, crm_response)
         VALUES ($1, 1, 'salesforce', 'w1', now(), 'failed', 'permanent', 'Subject: data value too large', 400, '[{"errorCode":"STRING_TOO_LONG"}]'::jsonb)`,
        [id],
      );
      const { cookie, csrf } = await login();
      const page = await get(`/admin/ui/syncs/${id}`, cookie);
      const text = visible(await page.text());
      expect(text).toContain('Sync ' + id + ': hcc:call-7 failed');
      expect(text).toContain('[mapping] mapping failed: disposition: no label for code "NOSALE" in the value table');
      expect(text).toContain('fail on this call: disposition: no label for code "NOSALE" in the value table');
      expect(text).toContain('"agent": "ann@example.com"');
      expect(text).toContain('[permanent] HTTP 400: Subject: data value too large');
      expect(text).toContain('"errorCode": "STRING_TOO_LONG"');

      const refused = await post(`/admin/ui/syncs/${id}/replay`, { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect([refused.status, refused.headers.get('location')]).toEqual([303, `/admin/ui/syncs/${id}?refused=mapping`]);
      expect(visible(await (await get(`/admin/ui/syncs/${id}?refused=mapping`, cookie)).text())).toContain(
        'Not queued: the current mappings still fail on this call (see "The current mappings" below). Fix the mapping, then replay again.',
      );
      expect((await callRow(testDb.database, id))?.status).toBe('failed');

      mappings.fix('NOSALE', 'No sale');
      const done = await post(`/admin/ui/syncs/${id}/replay`, { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect([done.status, done.headers.get('location')]).toEqual([303, `/admin/ui/syncs/${id}?notice=replayed`]);
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'pending', attempts: 0, activity: { dispositionLabel: 'No sale' } });
      expect(await eventStatuses(testDb.database, 'call-7')).toEqual(['pending']);
      const after = visible(await (await get(`/admin/ui/syncs/${id}?notice=replayed`, cookie)).text());
      expect(after).toContain('Queued for replay with the current mappings.');
      expect(after).toContain('"dispositionLabel": "No sale"');
      const audit = (await auditRows(testDb.database)).filter((a) => a.action !== 'session.login');
      // Every showing of the detail (raw payloads) is audited as a view.
      expect(audit.map((a) => [a.action, a.subject, a.via, a.ip, a.details['outcome'] ?? null])).toEqual([
        ['sync.view', `call_sync:${id}`, 'page', '192.0.2.10', null],
        ['sync.replay', `call_sync:${id}`, 'page', '192.0.2.10', 'refused'],
        ['sync.view', `call_sync:${id}`, 'page', '192.0.2.10', null],
        ['sync.replay', `call_sync:${id}`, 'page', '192.0.2.10', 'queued'],
        ['sync.view', `call_sync:${id}`, 'page', '192.0.2.10', null],
      ]);
    });

    it('discards from the detail view', async () => {
      const id = await seedCall(testDb.database, { callKey: 'd1', status: 'failed', events: ['failed'] });
      const { cookie, csrf } = await login();
      const res = await post(`/admin/ui/syncs/${id}/discard`, { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect([res.status, res.headers.get('location')]).toEqual([303, `/admin/ui/syncs/${id}?notice=discarded`]);
      expect((await callRow(testDb.database, id))?.status).toBe('discarded');
      expect(visible(await (await get(`/admin/ui/syncs/${id}?notice=discarded`, cookie)).text())).toContain('Discarded: the worker will not try this call again');
      const synced = await seedCall(testDb.database, { callKey: 'd2', status: 'synced' });
      const refused = await post(`/admin/ui/syncs/${synced}/discard`, { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect(refused.headers.get('location')).toBe(`/admin/ui/syncs/${synced}?refused=synced`);
      expect(visible(await (await get(refused.headers.get('location') ?? '', cookie)).text())).toContain('Not discarded: this call is already synced to the CRM.');
      expect((await callRow(testDb.database, synced))?.status).toBe('synced');
      const missing = await get('/admin/ui/syncs/99999', cookie);
      expect(missing.status).toBe(404);
      expect(visible(await missing.text())).toContain('no sync with id 99999');
      expect((await get('/admin/ui/syncs/99999999999999999999', cookie)).status).toBe(404);
      // A notice or refusal name that is not one of ours shows nothing (and no Object.prototype member).
      const odd = visible(await (await get(`/admin/ui/syncs/${id}?notice=constructor&refused=__proto__`, cookie)).text());
      expect(odd).not.toContain('function');
      expect(odd).not.toContain('[object');
    });

    it('says why a call with no events the mappings sync is not replayed', async () => {
      mappings.ignore('call-ended');
      const id = await seedCall(testDb.database, { callKey: 'hollow', status: 'failed', events: ['failed'] });
      const { cookie, csrf } = await login();
      const res = await post(`/admin/ui/syncs/${id}/replay`, { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect(res.headers.get('location')).toBe(`/admin/ui/syncs/${id}?refused=empty`);
      expect(visible(await (await get(`/admin/ui/syncs/${id}?refused=empty`, cookie)).text())).toContain(
        'Not queued: the call has no events the current mappings sync (retention removed them, or their types are ignored).',
      );
      expect((await callRow(testDb.database, id))?.status).toBe('failed');
    });

    it('bulk-replays only after a confirmation step that shows what would be replayed', async () => {
      const a = await seedCall(testDb.database, { callKey: 'b1', status: 'failed', updatedAtOffset: -600 });
      const b = await seedCall(testDb.database, { callKey: 'b2', status: 'failed', updatedAtOffset: -60 });
      const old = await seedCall(testDb.database, { callKey: 'b3', status: 'failed', updatedAtOffset: -5 * 3600 });
      const { cookie, csrf } = await login();

      const dashboard = await (await get('/admin?status=failed&since=2h', cookie)).text();
      expect(dashboard).toContain('action="/admin/ui/replay"');
      const confirm = await get('/admin/ui/replay?status=failed&since=2h', cookie);
      expect(confirm.status).toBe(200);
      const html = await confirm.text();
      expect(visible(html)).toContain('Replay 2 calls?');
      expect(visible(html)).toContain('Yes, replay 2 calls');
      // The confirmed replay uses the window as resolved when it was shown.
      const since = /name="since" value="([^"]+)"/.exec(html)?.[1];
      expect(since).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect((await callRow(testDb.database, a))?.status).toBe('failed');

      const res = await post('/admin/ui/replay', { _csrf: csrf, status: 'failed', since: since ?? '' }, { origin: ORIGIN, cookie });
      expect([res.status, res.headers.get('location')]).toEqual([303, '/admin?notice=bulk&count=2&skipped=0']);
      expect((await callRow(testDb.database, a))?.status).toBe('pending');
      expect((await callRow(testDb.database, b))?.status).toBe('pending');
      expect((await callRow(testDb.database, old))?.status).toBe('failed');
      expect(visible(await (await get('/admin?notice=bulk&count=2&skipped=0', cookie)).text())).toContain('Queued 2 calls for replay. The workers pick them up now.');
      expect((await auditRows(testDb.database)).filter((r) => r.action.startsWith('syncs.')).map((r) => [r.action, r.via, r.details['count']])).toEqual([
        ['syncs.replay.dry_run', 'page', 2],
        ['syncs.replay', 'page', 2],
      ]);

      const bad = await get('/admin/ui/replay?status=bogus', cookie);
      expect(bad.status).toBe(400);
      expect(visible(await bad.text())).toContain('status: expected one of pending, synced, failed, discarded');
    });
  });
});
