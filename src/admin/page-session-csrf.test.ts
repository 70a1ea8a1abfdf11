import { beforeEach, describe, expect, it } from 'vitest';
import { type Config } from '../config';
import { testConfig } from '../../test/support/config';
import type { createApp } from '../http/app';
import type { Database } from '../db/client';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { ADMIN_DISABLED_MESSAGE, SESSION_TTL_SECONDS } from './auth';
import { LOGIN_MAX_FAILURES } from './auth-audit';
import { ADMIN_TOKEN, FixableMappings, auditRows, callRow, seedCall } from '../../test/support/admin';
import { CONN, FORM, ORIGIN, buildAdminPageApp, pageGet, pageLogin, pagePost, visible } from '../../test/support/admin-page';

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
});
