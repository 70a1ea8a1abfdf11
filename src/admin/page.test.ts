import { beforeEach, describe, expect, it } from 'vitest';
import { testConfig, type Config } from '../config';
import { createApp } from '../http/app';
import { createLogger } from '../log';
import { Metrics } from '../metrics';
import type { Database } from '../db/client';
import { IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { ADMIN_DISABLED_MESSAGE, SESSION_TTL_SECONDS } from './auth';
import { mountAdmin } from './index';
import { LOGIN_MAX_FAILURES } from './auth-audit';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { ADMIN_TOKEN, FixableMappings, auditRows, callRow, eventStatuses, seedCall } from '../../test/support/admin';

const logger = createLogger({ level: 'silent' });
const CONN = { incoming: { socket: { remoteAddress: '192.0.2.10', remotePort: 40000, remoteFamily: 'IPv4' } } };
const ORIGIN = 'http://localhost';
const FORM = 'application/x-www-form-urlencoded';

/** The visible text of a page: tags dropped, entities decoded, spaces collapsed. */
function visible(html: string): string {
  return html
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ')
    .trim();
}

function sessionCookie(res: Response): string {
  const match = /callsync_admin=([^;]*)/.exec(res.headers.get('set-cookie') ?? '');
  if (!match?.[1]) throw new Error('no session cookie set');
  return `callsync_admin=${match[1]}`;
}

function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no CSRF field on the page');
  return match[1];
}

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
    const metrics = new Metrics();
    const ingest = new IngestQueue(testDb.database, { maxBatch: 10, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
    return createApp({
      config,
      database,
      logger,
      metrics,
      ingest,
      mappings: { current: () => mappings },
      mount: (a) => mountAdmin(a, { config, database, logger, mappings: { current: () => mappings }, now: () => clock }),
    });
  }

  const get = (path: string, cookie?: string) => app.request(path, { headers: { ...(cookie ? { cookie } : {}), 'user-agent': 'page-test' } }, CONN);
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}, conn: typeof CONN = CONN) =>
    app.request(path, { method: 'POST', headers: { 'content-type': FORM, 'user-agent': 'page-test', ...headers }, body: new URLSearchParams(form).toString() }, conn);

  /** Logs in through the form; returns the session cookie and its CSRF token (read off the dashboard). */
  async function login(): Promise<{ cookie: string; csrf: string }> {
    const res = await post('/admin/login', { token: ADMIN_TOKEN, next: '/admin' }, { origin: ORIGIN });
    expect(res.status).toBe(303);
    const cookie = sessionCookie(res);
    const dashboard = await get('/admin', cookie);
    expect(dashboard.status).toBe(200);
    return { cookie, csrf: csrfOf(await dashboard.text()) };
  }

  describe('login and session', () => {
    it('sends a visitor without a session to the login form, keeping where they were going', async () => {
      const res = await get('/admin');
      expect([res.status, res.headers.get('location')]).toEqual([303, '/admin/login']);
      const deep = await get('/admin/ui/syncs/5');
      expect(deep.headers.get('location')).toBe('/admin/login?next=%2Fadmin%2Fui%2Fsyncs%2F5');
      const form = await get('/admin/login?next=%2Fadmin%2Fui%2Fsyncs%2F5');
      expect(form.status).toBe(200);
      const html = await form.text();
      expect(html).toContain('<input type="hidden" name="next" value="/admin/ui/syncs/5"/>');
      expect(html).toContain('type="password" name="token"');
      expect((await get('/admin/')).headers.get('location')).toBe('/admin');
    });

    it('refuses a wrong token (audited) and sets a hardened cookie that is not the token for the right one', async () => {
      const wrong = await post('/admin/login', { token: 'not-the-token-at-all', next: '/admin' }, { origin: ORIGIN });
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      expect(visible(await wrong.text())).toContain('That is not the admin token.');

      const ok = await post('/admin/login', { token: ADMIN_TOKEN, next: '/admin/ui/syncs/5' }, { origin: ORIGIN });
      expect([ok.status, ok.headers.get('location')]).toEqual([303, '/admin/ui/syncs/5']);
      const setCookie = ok.headers.get('set-cookie') ?? '';
      expect(setCookie).toMatch(/^callsync_admin=[A-Za-z0-9_-]+\.\d+\.[A-Za-z0-9_-]+;/);
      expect(setCookie).toContain('HttpOnly');
      expect(setCookie).toContain('SameSite=Strict');
      expect(setCookie).toContain('Path=/admin');
      expect(setCookie).toContain(`Max-Age=${SESSION_TTL_SECONDS}`);
      expect(setCookie).toMatch(/Expires=[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4}/);
      expect(setCookie).not.toContain('Secure');
      expect(setCookie).not.toContain(ADMIN_TOKEN);

      expect((await auditRows(testDb.database)).map((a) => [a.action, a.via, a.ip, a.user_agent])).toEqual([
        ['session.login_failed', 'page', '192.0.2.10', 'page-test'],
        ['session.login', 'page', '192.0.2.10', 'page-test'],
      ]);
    });

    it('marks the cookie Secure when the browser is on https (directly or through a proxy)', async () => {
      const proxied = await post('/admin/login', { token: ADMIN_TOKEN }, { origin: 'https://admin.example.com', host: 'admin.example.com', 'x-forwarded-proto': 'https' });
      expect(proxied.status).toBe(303);
      expect(proxied.headers.get('set-cookie')).toContain('Secure');
      const direct = await app.request(
        'https://admin.example.com/admin/login',
        { method: 'POST', headers: { 'content-type': FORM, origin: 'https://admin.example.com' }, body: `token=${ADMIN_TOKEN}` },
        CONN,
      );
      expect(direct.headers.get('set-cookie')).toContain('Secure');
    });

    it('does not redirect anywhere outside the admin after login', async () => {
      for (const next of ['https://evil.example/', '//evil.example/admin', '/admin/../webhooks', '/adminx']) {
        const res = await post('/admin/login', { token: ADMIN_TOKEN, next }, { origin: ORIGIN });
        expect(res.headers.get('location'), next).toBe('/admin');
      }
    });

    it('ends the session at its expiry', async () => {
      const { cookie } = await login();
      clock = new Date(clock.getTime() + (SESSION_TTL_SECONDS - 60) * 1000);
      expect((await get('/admin', cookie)).status).toBe(200);
      clock = new Date(clock.getTime() + 120_000);
      expect((await get('/admin', cookie)).headers.get('location')).toBe('/admin/login');
    });

    it('ends the session on logout, server-side: the old cookie is refused at once, other sessions live on', async () => {
      const { cookie, csrf } = await login();
      const other = await login();
      const out = await post('/admin/logout', { _csrf: csrf }, { origin: ORIGIN, cookie });
      expect([out.status, out.headers.get('location')]).toEqual([303, '/admin/login?bye=1']);
      expect(out.headers.get('set-cookie')).toMatch(/^callsync_admin=; Max-Age=0; Path=\/admin/);
      expect((await auditRows(testDb.database)).map((a) => a.action)).toEqual(['session.login', 'session.login', 'session.logout']);

      // The same clock, the very cookie the browser just dropped (as an attacker who copied it would send it).
      const reused = await get('/admin', cookie);
      expect([reused.status, reused.headers.get('location')]).toEqual([303, '/admin/login']);
      const action = await post(`/admin/ui/replay`, { _csrf: csrf, status: 'failed' }, { origin: ORIGIN, cookie });
      expect(action.status).toBe(401);
      expect(visible(await action.text())).toContain('Your session has ended; log in again, then repeat the action.');
      expect((await get('/admin/login', cookie)).status).toBe(200);
      expect((await post('/admin/logout', { _csrf: csrf }, { origin: ORIGIN, cookie })).status).toBe(401);

      expect((await get('/admin', other.cookie)).status).toBe(200);
      expect((await auditRows(testDb.database)).map((a) => a.action)).toEqual(['session.login', 'session.login', 'session.logout']);
    });

    it('behind TRUST_PROXY_HOPS proxies, limits and audits the client address X-Forwarded-For names, not the proxy', async () => {
      app = buildApp(testConfig({ ADMIN_TOKEN, TRUST_PROXY_HOPS: '1' }));
      // Every request comes from the proxy's socket (CONN); the proxy appends the client's address.
      const from = (client: string, spoofed = '') => ({ origin: ORIGIN, 'x-forwarded-for': `${spoofed}${client}` });
      for (let i = 1; i <= LOGIN_MAX_FAILURES; i += 1) await post('/admin/login', { token: `wrong-${i}` }, from('198.51.100.20', `10.9.9.${i}, `));
      expect((await post('/admin/login', { token: ADMIN_TOKEN }, from('198.51.100.20'))).status).toBe(429);
      // Another client behind the same proxy logs in.
      expect((await post('/admin/login', { token: ADMIN_TOKEN }, from('198.51.100.21'))).status).toBe(303);
      const rows = await auditRows(testDb.database);
      expect(rows.map((a) => [a.action, a.ip])).toEqual([
        ...Array.from({ length: LOGIN_MAX_FAILURES }, () => ['session.login_failed', '198.51.100.20']),
        ['session.login', '198.51.100.21'],
      ]);

      // Without trusted proxies the header is ignored: a client cannot choose its address.
      app = buildApp(testConfig({ ADMIN_TOKEN }));
      await post('/admin/login', { token: 'wrong' }, from('198.51.100.30'));
      expect((await auditRows(testDb.database)).at(-1)).toMatchObject({ action: 'session.login_failed', ip: '192.0.2.10' });
      // Nor can it when the header is shorter than the proxy chain (it did not come through them all).
      app = buildApp(testConfig({ ADMIN_TOKEN, TRUST_PROXY_HOPS: '2' }));
      await post('/admin/login', { token: 'wrong' }, from('198.51.100.31'));
      expect((await auditRows(testDb.database)).at(-1)).toMatchObject({ action: 'session.login_failed', ip: '192.0.2.10' });
    });

    it('makes an address wait after 5 failed logins (even with the right token), auditing only those 5', async () => {
      const elsewhere = { incoming: { socket: { remoteAddress: '192.0.2.99', remotePort: 40001, remoteFamily: 'IPv4' } } };
      for (let i = 1; i < LOGIN_MAX_FAILURES; i += 1) {
        const res = await post('/admin/login', { token: `wrong-${i}` }, { origin: ORIGIN });
        expect(res.status, `attempt ${i}`).toBe(401);
      }
      const last = await post('/admin/login', { token: 'wrong-5' }, { origin: ORIGIN });
      expect([last.status, last.headers.get('retry-after')]).toEqual([429, '900']);
      expect(visible(await last.text())).toContain('Too many failed logins from your address; try again in 15 minutes.');

      clock = new Date(clock.getTime() + 14 * 60_000);
      const right = await post('/admin/login', { token: ADMIN_TOKEN }, { origin: ORIGIN });
      expect([right.status, right.headers.get('retry-after'), right.headers.get('set-cookie')]).toEqual([429, '60', null]);
      expect(visible(await right.text())).toContain('try again in 1 minute.');
      for (let i = 0; i < 20; i += 1) expect((await post('/admin/login', { token: `flood-${i}` }, { origin: ORIGIN })).status).toBe(429);

      // Another address is not affected.
      expect((await post('/admin/login', { token: ADMIN_TOKEN }, { origin: ORIGIN }, elsewhere)).status).toBe(303);

      const failed = (await auditRows(testDb.database)).filter((a) => a.action === 'session.login_failed');
      expect(failed.map((a) => [a.ip, a.details])).toEqual([
        ['192.0.2.10', { failures: 1 }],
        ['192.0.2.10', { failures: 2 }],
        ['192.0.2.10', { failures: 3 }],
        ['192.0.2.10', { failures: 4 }],
        ['192.0.2.10', { failures: 5, blockedForSeconds: 900 }],
      ]);

      // Once the window has passed the address may log in again.
      clock = new Date(clock.getTime() + 61_000);
      expect((await post('/admin/login', { token: ADMIN_TOKEN }, { origin: ORIGIN })).status).toBe(303);
    });

    it('refuses a forged cookie, and every session once ADMIN_TOKEN changes', async () => {
      const { cookie } = await login();
      const [name, value] = cookie.split('=') as [string, string];
      const [id, expiry, mac] = value.split('.') as [string, string, string];
      expect((await get('/admin', `${name}=${id}.${Number(expiry) + 3600}.${mac}`)).status).toBe(303);
      expect((await get('/admin', `${name}=${ADMIN_TOKEN}`)).status).toBe(303);
      app = buildApp(testConfig({ ADMIN_TOKEN: `${ADMIN_TOKEN}-rotated` }));
      expect((await get('/admin', cookie)).status).toBe(303);
    });

    it('says the admin is disabled when ADMIN_TOKEN is not set', async () => {
      app = buildApp(testConfig({ ADMIN_TOKEN: undefined }));
      for (const res of [await get('/admin'), await get('/admin/login'), await post('/admin/login', { token: ADMIN_TOKEN }, { origin: ORIGIN })]) {
        expect(res.status).toBe(403);
        expect(visible(await res.text())).toContain(ADMIN_DISABLED_MESSAGE);
      }
    });
  });

  describe('CSRF', () => {
    it('refuses state-changing forms from another site, without Origin, without the session token, or with another session\'s token', async () => {
      const id = await seedCall(testDb.database, { callKey: 'c1', status: 'failed', attempts: 3, lastError: 'boom' });
      const a = await login();
      const b = await login();
      const cases: Array<[string, Record<string, string>, Record<string, string>, number, string]> = [
        ['cross-site origin', { _csrf: a.csrf }, { origin: 'https://evil.example', cookie: a.cookie }, 403, 'Cross-site form submissions are refused.'],
        ['no origin at all', { _csrf: a.csrf }, { cookie: a.cookie }, 403, 'Cross-site form submissions are refused.'],
        ['cross-site fetch metadata', { _csrf: a.csrf }, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site', cookie: a.cookie }, 403, 'Cross-site form submissions are refused.'],
        ['no CSRF token', {}, { origin: ORIGIN, cookie: a.cookie }, 403, 'missing or stale CSRF token'],
        ["another session's token", { _csrf: b.csrf }, { origin: ORIGIN, cookie: a.cookie }, 403, 'missing or stale CSRF token'],
        ['no session', { _csrf: a.csrf }, { origin: ORIGIN }, 401, 'Your session has ended'],
      ];
      for (const [label, form, headers, status, text] of cases) {
        for (const path of [`/admin/ui/syncs/${id}/replay`, `/admin/ui/syncs/${id}/discard`, '/admin/ui/replay', '/admin/logout']) {
          const res = await post(path, { status: 'failed', ...form }, headers);
          expect(res.status, `${label}: ${path}`).toBe(status);
          expect(visible(await res.text()), `${label}: ${path}`).toContain(text);
        }
      }
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'failed', attempts: 3 });
      expect((await auditRows(testDb.database)).map((r) => r.action)).toEqual(['session.login', 'session.login']);

      const login2 = await post('/admin/login', { token: ADMIN_TOKEN }, { origin: 'https://evil.example' });
      expect(login2.status).toBe(403);
      expect(login2.headers.get('set-cookie')).toBeNull();
    });
  });

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
