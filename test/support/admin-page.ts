import { expect } from 'vitest';
import type { Config } from '../../src/config';
import type { Database } from '../../src/db/client';
import { createApp } from '../../src/http/app';
import { createLogger } from '../../src/log';
import { Metrics } from '../../src/metrics';
import { IngestQueue } from '../../src/outbox/ingest';
import { mountAdmin } from '../../src/admin/index';
import { ADMIN_TOKEN, type FixableMappings } from './admin';

/** Shared by the admin page's test files (src/admin/page-*.test.ts). Test-only. */

export const logger = createLogger({ level: 'silent' });
export const CONN = { incoming: { socket: { remoteAddress: '192.0.2.10', remotePort: 40000, remoteFamily: 'IPv4' } } };
export const ORIGIN = 'http://localhost';
export const FORM = 'application/x-www-form-urlencoded';

/** The visible text of a page: tags dropped, entities decoded, spaces collapsed. */
export function visible(html: string): string {
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

export function sessionCookie(res: Response): string {
  const match = /callsync_admin=([^;]*)/.exec(res.headers.get('set-cookie') ?? '');
  if (!match?.[1]) throw new Error('no session cookie set');
  return `callsync_admin=${match[1]}`;
}

export function csrfOf(html: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!match?.[1]) throw new Error('no CSRF field on the page');
  return match[1];
}

/** The app with the admin mounted, its clock read through `now`. */
export function buildAdminPageApp(deps: { config: Config; database: Database; ingestDatabase: Database; mappings: FixableMappings; now: () => Date }): ReturnType<typeof createApp> {
  const { config, database, mappings, now } = deps;
  const metrics = new Metrics();
  const ingest = new IngestQueue(deps.ingestDatabase, { maxBatch: 10, maxInFlight: 1, timeoutMs: 5_000 }, logger, metrics);
  return createApp({
    config,
    database,
    logger,
    metrics,
    ingest,
    mappings: { current: () => mappings },
    mount: (a) => mountAdmin(a, { config, database, logger, mappings: { current: () => mappings }, now }),
  });
}

type App = ReturnType<typeof createApp>;

export const pageGet = (app: App, path: string, cookie?: string) =>
  app.request(path, { headers: { ...(cookie ? { cookie } : {}), 'user-agent': 'page-test' } }, CONN);

export const pagePost = (app: App, path: string, form: Record<string, string>, headers: Record<string, string> = {}, conn: typeof CONN = CONN) =>
  app.request(path, { method: 'POST', headers: { 'content-type': FORM, 'user-agent': 'page-test', ...headers }, body: new URLSearchParams(form).toString() }, conn);

/** Logs in through the form; returns the session cookie and its CSRF token (read off the dashboard). */
export async function pageLogin(app: App): Promise<{ cookie: string; csrf: string }> {
  const res = await pagePost(app, '/admin/login', { token: ADMIN_TOKEN, next: '/admin' }, { origin: ORIGIN });
  expect(res.status).toBe(303);
  const cookie = sessionCookie(res);
  const dashboard = await pageGet(app, '/admin', cookie);
  expect(dashboard.status).toBe(200);
  return { cookie, csrf: csrfOf(await dashboard.text()) };
}
