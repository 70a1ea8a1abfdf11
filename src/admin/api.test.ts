import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { testConfig, type Config } from '../config';
import { SyncError } from '../core/errors';
import type { Database } from '../db/client';
import { ERROR_CODES } from '../core/errors';
import { createApp } from '../http/app';
import { createLogger } from '../log';
import { Metrics } from '../metrics';
import { IngestQueue } from '../outbox/ingest';
import { SyncWorker } from '../worker/loop';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget } from '../../test/support/memory-target';
import { adminApi } from './api';
import { ADMIN_DISABLED_MESSAGE } from './auth';
import { mountAdmin } from './index';
import { AdminService } from './service';
import { encodeCursor } from './store';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { ADMIN_TOKEN, FixableMappings, addEvent, auditRows, callRow, eventStatuses, fastWorkerConfig, newEvent, seedCall } from '../../test/support/admin';

const logger = createLogger({ level: 'silent' });
/** What @hono/node-server passes as env: the socket the request came in on. */
const CONN = { incoming: { socket: { remoteAddress: '203.0.113.7', remotePort: 50000, remoteFamily: 'IPv4' } } };
const AUTH = { authorization: `Bearer ${ADMIN_TOKEN}`, 'user-agent': 'admin-test/1.0' };

/** Every API route, as the OpenAPI document must list it. */
const API_ROUTES = [
  'GET /admin/syncs',
  'GET /admin/syncs/{id}',
  'POST /admin/syncs/{id}/replay',
  'POST /admin/syncs/{id}/discard',
  'POST /admin/syncs/replay',
  'GET /admin/events/{id}',
  'GET /admin/summary',
  'GET /admin/audit',
  'GET /admin/openapi.json',
].sort();

describe.each(testDbKinds())('admin API on %s', (kind) => {
  let testDb: TestDatabase;
  let mappings: FixableMappings;
  let target: MemoryTarget;
  let ingest: IngestQueue;
  let config: Config;
  let app: ReturnType<typeof createApp>;

  const db = useAdminTestDatabase(kind);
  beforeEach(() => {
    testDb = db();
    mappings = new FixableMappings();
    target = new MemoryTarget();
    config = testConfig({ ADMIN_TOKEN });
    app = buildApp(config);
  });

  function buildApp(appConfig: Config, options: { database?: Database; log?: typeof logger } = {}) {
    const metrics = new Metrics();
    const database = options.database ?? testDb.database;
    const log = options.log ?? logger;
    ingest = new IngestQueue(testDb.database, { maxBatch: 100, maxInFlight: 1, timeoutMs: 5_000 }, log, metrics);
    return createApp({
      config: appConfig,
      database,
      logger: log,
      metrics,
      ingest,
      mappings: { current: () => mappings },
      mount: (a) => mountAdmin(a, { config: appConfig, database, logger: log, mappings: { current: () => mappings }, target }),
    });
  }

  const worker = () =>
    new SyncWorker({ database: testDb.database, mappings: { current: () => mappings }, target, config: fastWorkerConfig(), logger, metrics: new Metrics() });

  async function call(method: string, path: string, options: { headers?: Record<string, string>; body?: unknown; raw?: string } = {}) {
    const headers: Record<string, string> = { ...AUTH, ...options.headers };
    let body: string | undefined;
    if (options.raw !== undefined) body = options.raw;
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await app.request(path, { method, headers, ...(body === undefined ? {} : { body }) }, CONN);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text, json: text.startsWith('{') || text.startsWith('[') ? (JSON.parse(text) as Record<string, unknown>) : undefined };
  }

  /**
   * Real rows through intake and the worker: `good` synced, `bad` failed by
   * the mapping (an unknown disposition code), `slow` pending after a
   * transient CRM error.
   */
  async function scenario() {
    await Promise.all([
      ingest.submit(newEvent('good', 'call-created')),
      ingest.submit(newEvent('good', 'call-ended', { disposition: 'SALE' })),
      ingest.submit(newEvent('bad', 'call-created')),
      ingest.submit(newEvent('bad', 'call-ended', { disposition: 'NOSALE', phone: '+358501231234' })),
      ingest.submit(newEvent('slow', 'call-ended')),
    ]);
    target.inject((items) =>
      items.map((item) =>
        item.externalId === 'hcc:slow'
          ? { ok: false as const, error: new SyncError('transient', 'Service Unavailable', { httpStatus: 503, crmResponse: { message: 'down' } }) }
          : { ok: true as const, ids: { [item.externalId]: `crm-${item.externalId}` }, created: true, sent: { Subject: 'sent' } },
      ),
    );
    await worker().runOnce();
    const ids = await testDb.database.query<{ id: number; call_key: string }>('SELECT id, call_key FROM call_syncs ORDER BY id');
    const id = (key: string) => {
      const found = ids.find((r) => r.call_key === key);
      if (!found) throw new Error(`no call ${key}`);
      return found.id;
    };
    return { good: id('good'), bad: id('bad'), slow: id('slow') };
  }

  describe('security', () => {
    it('refuses every route without the token or with a wrong one, before looking at the input', async () => {
      const doc = await call('GET', '/admin/openapi.json');
      const paths = (doc.json as { paths: Record<string, Record<string, unknown>> }).paths;
      for (const [path, methods] of Object.entries(paths)) {
        for (const method of Object.keys(methods)) {
          const url = `${path.replace('{id}', '1')}?status=not-a-status`;
          const missing = await app.request(url, { method: method.toUpperCase() }, CONN);
          expect(missing.status, `${method} ${path}`).toBe(401);
          expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="callsync-admin"');
          expect(await missing.json()).toEqual({ error: { code: 'unauthorized', message: 'the admin API needs the header Authorization: Bearer <ADMIN_TOKEN>' } });

          const wrong = await app.request(url, { method: method.toUpperCase(), headers: { authorization: `Bearer ${ADMIN_TOKEN}-nope` } }, CONN);
          expect(wrong.status, `${method} ${path}`).toBe(401);
          const wrongText = await wrong.text();
          expect(JSON.parse(wrongText)).toEqual({ error: { code: 'unauthorized', message: 'the admin token is not valid' } });
          expect(wrongText).not.toContain(ADMIN_TOKEN);

          const basic = await app.request(url, { method: method.toUpperCase(), headers: { authorization: `Basic ${ADMIN_TOKEN}` } }, CONN);
          expect(await basic.json()).toEqual({ error: { code: 'unauthorized', message: 'the Authorization header must be "Bearer <ADMIN_TOKEN>"' } });
        }
      }
      expect(Object.keys(paths).length).toBeGreaterThan(5);
    });

    it('says clearly that the admin is disabled when no ADMIN_TOKEN is set, token or not', async () => {
      app = buildApp(testConfig({ ADMIN_TOKEN: undefined }));
      for (const route of API_ROUTES) {
        const [method, path] = route.split(' ') as [string, string];
        for (const headers of [{}, AUTH]) {
          const res = await app.request(path.replace('{id}', '1'), { method, headers }, CONN);
          expect(res.status, route).toBe(403);
          expect(await res.json()).toEqual({ error: { code: 'admin_disabled', message: ADMIN_DISABLED_MESSAGE } });
        }
      }
    });

    it('audits refused requests, the first 5 per address in 15 minutes, never with the token', async () => {
      const id = await seedCall(testDb.database, { callKey: 'guarded', status: 'failed' });
      const other = { incoming: { socket: { remoteAddress: '198.51.100.99', remotePort: 1, remoteFamily: 'IPv4' } } };
      for (let i = 0; i < 8; i += 1) {
        const res = await app.request(`/admin/syncs/${id}/replay`, { method: 'POST', headers: { authorization: `Bearer guess-${i}-${ADMIN_TOKEN}`, 'user-agent': 'guesser' } }, CONN);
        expect(res.status).toBe(401);
      }
      expect((await app.request('/admin/syncs', {}, other)).status).toBe(401);
      expect((await app.request('/admin/events/1%00x', { headers: { authorization: 'Basic x' } }, other)).status).toBe(401);
      const rows = await auditRows(testDb.database);
      expect(rows.map((r) => [r.action, r.ip, r.via, r.user_agent, r.details])).toEqual([
        ...[1, 2, 3, 4].map((n) => ['api.auth_failed', '203.0.113.7', 'api', 'guesser', { reason: 'wrong', method: 'POST', path: `/admin/syncs/${id}/replay`, failures: n }]),
        [
          'api.auth_failed',
          '203.0.113.7',
          'api',
          'guesser',
          { reason: 'wrong', method: 'POST', path: `/admin/syncs/${id}/replay`, failures: 5, note: 'further failures from this address are not audited for 15 minutes' },
        ],
        ['api.auth_failed', '198.51.100.99', 'api', null, { reason: 'missing', method: 'GET', path: '/admin/syncs', failures: 1 }],
        // The path is stored as the audit table can hold it (no NUL).
        ['api.auth_failed', '198.51.100.99', 'api', null, { reason: 'malformed', method: 'GET', path: '/admin/events/1x', failures: 2 }],
      ]);
      expect(JSON.stringify(rows)).not.toContain(ADMIN_TOKEN);
      expect((await callRow(testDb.database, id))?.status).toBe('failed');
    });

    it('marks answers uncacheable and never echoes the token', async () => {
      const { bad } = await scenario();
      for (const path of ['/admin/syncs', `/admin/syncs/${bad}`, '/admin/summary', '/admin/audit', '/admin/openapi.json']) {
        const res = await call('GET', path);
        expect(res.status, path).toBe(200);
        expect(res.headers.get('cache-control')).toBe('no-store');
        expect(res.text).not.toContain(ADMIN_TOKEN);
      }
    });
  });

  it('lists every API route in the OpenAPI document, generated from the same schemas', async () => {
    const res = await call('GET', '/admin/openapi.json');
    expect(res.status).toBe(200);
    const doc = res.json as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown; parameters?: Array<{ name: string; in: string }> }>>;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    const documented = Object.entries(doc.paths)
      .flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
      .sort();
    expect(documented).toEqual(API_ROUTES);

    // ...and exactly the routes the API serves.
    const served = new Set(
      adminApi(config, new AdminService({ database: testDb.database, logger })).routes.map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    );
    expect([...served].sort()).toEqual(API_ROUTES);

    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const operation of Object.values(methods)) expect(operation.security, path).toEqual([{ AdminToken: [] }]);
    }
    expect(doc.components.securitySchemes).toEqual({ AdminToken: { type: 'http', scheme: 'bearer', description: 'The ADMIN_TOKEN of the service.' } });
    expect(doc.paths['/admin/syncs']?.['get']?.parameters?.map((p) => p.name).sort()).toEqual(['cursor', 'limit', 'q', 'since', 'source', 'status', 'until']);
  });

  it('documents the error statuses each route can answer, with the code as an enum of the codes used', async () => {
    const doc = (await call('GET', '/admin/openapi.json')).json as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
      components: { schemas: Record<string, { properties: { error: { properties: { code: { enum?: string[] } } } } }> };
    };
    expect(doc.components.schemas['Error']?.properties.error.properties.code.enum).toEqual([...ERROR_CODES]);
    const statuses = (route: string) => {
      const [method, path] = route.split(' ') as [string, string];
      return Object.keys(doc.paths[path]?.[method.toLowerCase()]?.responses ?? {}).sort();
    };
    const common = ['200', '401', '403', '500', '503'];
    expect(Object.fromEntries(API_ROUTES.map((route) => [route, statuses(route)]))).toEqual({
      'GET /admin/audit': [...common, '400'].sort(),
      'GET /admin/events/{id}': [...common, '400', '404'].sort(),
      'GET /admin/openapi.json': common,
      'GET /admin/summary': common,
      'GET /admin/syncs': [...common, '400'].sort(),
      'GET /admin/syncs/{id}': [...common, '400', '404'].sort(),
      'POST /admin/syncs/replay': [...common, '400', '413', '415'].sort(),
      'POST /admin/syncs/{id}/discard': [...common, '400', '404', '409', '413'].sort(),
      'POST /admin/syncs/{id}/replay': [...common, '400', '404', '409', '413', '422'].sort(),
    });
  });

  describe('GET /admin/syncs', () => {
    it('lists one sync per call with its last error, filtered', async () => {
      const { good, bad, slow } = await scenario();
      const all = await call('GET', '/admin/syncs');
      expect(all.status).toBe(200);
      const items = (all.json as { items: Array<Record<string, unknown>> }).items;
      expect(items.map((i) => i['id']).sort()).toEqual([good, bad, slow].sort());
      expect(items.find((i) => i['id'] === bad)).toMatchObject({
        source: 'hcc',
        callKey: 'bad',
        externalId: 'hcc:bad',
        status: 'failed',
        attempts: 1,
        target: 'dry-run',
        lastError: 'mapping failed: disposition: no label for code "NOSALE" in the value table',
        lastErrorKind: 'mapping',
        crmId: null,
        leasedUntil: null,
      });
      expect(items.find((i) => i['id'] === good)).toMatchObject({ status: 'synced', crmId: 'crm-hcc:good', lastError: null });
      expect(items.find((i) => i['id'] === slow)).toMatchObject({ status: 'pending', lastHttpStatus: 503, lastErrorKind: 'transient' });

      const ids = async (query: string) => ((await call('GET', `/admin/syncs?${query}`)).json as { items: Array<{ id: number }> }).items.map((i) => i.id);
      expect(await ids('status=failed')).toEqual([bad]);
      expect(await ids('status=failed&source=enreach')).toEqual([]);
      expect(await ids('q=BAD')).toEqual([bad]);
      expect(await ids('q=hcc%3Agood')).toEqual([good]);
      expect(await ids('q=value%20table')).toEqual([bad]);
      expect(await ids('q=crm-hcc%3Agood')).toEqual([good]);
      expect(await ids('q=%25')).toEqual([]);
      expect((await ids('since=1h')).length).toBe(3);
      expect(await ids('until=1h')).toEqual([]);
      expect((await ids(`since=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}&until=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`)).length).toBe(3);
    });

    it('pages with an opaque cursor in a stable order, ties broken by id', async () => {
      const tie = '2025-11-21T10:00:00.123456Z';
      const created: number[] = [];
      for (let i = 0; i < 7; i += 1) {
        created.push(await seedCall(testDb.database, { callKey: `p${i}`, status: 'failed', ...(i >= 2 && i < 5 ? { updatedAt: tie } : { updatedAtOffset: -i * 60 }) }));
      }
      const expected = (
        await testDb.database.query<{ id: number }>('SELECT id FROM call_syncs ORDER BY updated_at DESC, id DESC')
      ).map((r) => r.id);
      const seen: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res = await call('GET', `/admin/syncs?status=failed&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.status).toBe(200);
        const page = res.json as { items: Array<{ id: number }>; nextCursor: string | null };
        seen.push(...page.items.map((i) => i.id));
        cursor = page.nextCursor;
        pages += 1;
      } while (cursor !== null && pages < 10);
      expect(pages).toBe(4);
      expect(seen).toEqual(expected);
      expect(new Set(seen).size).toBe(7);
    });

    it.each([
      ['status=bogus', 'status: expected one of pending, synced, failed, discarded'],
      ['source=zendesk', 'source: expected one of genesys-ocs, enreach, ucontact, hcc, webex-cc'],
      ['since=yesterday', 'since: expected a relative time such as 30m, 2h or 7d, an ISO 8601 time with a zone such as 2025-11-21T08:00:00Z, or a date such as 2025-11-21'],
      ['until=2025-11-21T08:00:00', 'until: expected a relative time such as 30m, 2h or 7d, an ISO 8601 time with a zone such as 2025-11-21T08:00:00Z, or a date such as 2025-11-21'],
      ['since=1h&until=2h', 'until: must be later than since'],
      ['limit=0', 'limit: must be an integer from 1 to 200'],
      ['limit=201', 'limit: must be an integer from 1 to 200'],
      ['limit=ten', 'limit: must be an integer from 1 to 200'],
      ['cursor=not-a-cursor', 'cursor: is not a cursor this server issued; pass the nextCursor of a previous page'],
      ['stauts=failed', 'stauts: unknown parameter'],
      ['status=bogus&limit=0', 'status: expected one of pending, synced, failed, discarded; limit: must be an integer from 1 to 200'],
      ['since=999999w', 'since: goes too far back: a relative time reaches at most 3650d (10 years); use a date for anything older'],
      ['until=999999w', 'until: goes too far back: a relative time reaches at most 3650d (10 years); use a date for anything older'],
      ['since=0000-01-01', 'since: is out of range: times must fall between 1970-01-01 and 9999-12-31'],
      ['until=0001-01-01T00:00:00Z', 'until: is out of range: times must fall between 1970-01-01 and 9999-12-31'],
      ['q=%00', 'q: must not contain control characters (such as NUL, tabs or line breaks)'],
      ['q=call%00key', 'q: must not contain control characters (such as NUL, tabs or line breaks)'],
      ['q=a%0Ab', 'q: must not contain control characters (such as NUL, tabs or line breaks)'],
      [`cursor=${encodeCursor({ at: '0000-01-01T00:00:00.000000Z', id: 1 })}`, 'cursor: is not a cursor this server issued; pass the nextCursor of a previous page'],
      [`cursor=${encodeCursor({ at: '2025-02-30T00:00:00.000000Z', id: 1 })}`, 'cursor: is not a cursor this server issued; pass the nextCursor of a previous page'],
      [`cursor=${encodeCursor({ at: '2025-11-21T10:00:00.000000Z', id: 2 ** 60 })}`, 'cursor: is not a cursor this server issued; pass the nextCursor of a previous page'],
    ])('refuses %s with 400 naming the field', async (query, message) => {
      const res = await call('GET', `/admin/syncs?${query}`);
      expect(res.status).toBe(400);
      const body = res.json as { error: { code: string; message: string } };
      expect(body.error.code).toBe('validation_failed');
      if (message.startsWith('until: must be later')) expect(body.error.message).toMatch(/^until: must be later than since \(.+ is not before .+\)$/);
      else expect(body).toEqual({ error: { code: 'validation_failed', message } });
    });
  });

  describe('GET /admin/syncs/:id and /admin/events/:id', () => {
    it('shows the events with raw payloads, the mapped activity, the CRM payload, the attempt history and the error', async () => {
      const { bad, good } = await scenario();
      const res = await call('GET', `/admin/syncs/${bad}`);
      expect(res.status).toBe(200);
      const detail = res.json as {
        sync: Record<string, unknown>;
        preview: Record<string, unknown>;
        events: Array<Record<string, unknown>>;
        attempts: Array<Record<string, unknown>>;
      };
      expect(detail.sync).toMatchObject({ id: bad, status: 'failed', version: 2, lastErrorKind: 'mapping', activity: null, crmPayload: null });
      expect(detail.events.map((e) => e['eventType'])).toEqual(['call-created', 'call-ended']);
      expect(detail.events[1]).toMatchObject({ status: 'failed', payload: { disposition: 'NOSALE', phone: '+358501231234' }, headers: { 'content-type': 'application/json' } });
      expect(JSON.parse(detail.events[1]?.['rawBody'] as string)).toMatchObject({ disposition: 'NOSALE' });
      expect(detail.attempts).toEqual([
        expect.objectContaining({ attempt: 1, outcome: 'failed', errorKind: 'mapping', error: 'mapping failed: disposition: no label for code "NOSALE" in the value table', target: 'dry-run' }),
      ]);
      expect(detail.preview).toEqual({ ok: false, error: 'disposition: no label for code "NOSALE" in the value table' });

      mappings.fix('NOSALE', 'No sale');
      const fixed = (await call('GET', `/admin/syncs/${bad}`)).json as { preview: { ok: boolean; activity: { dispositionLabel: string } } };
      expect(fixed.preview).toMatchObject({ ok: true, activity: { dispositionLabel: 'No sale' } });

      const synced = (await call('GET', `/admin/syncs/${good}`)).json as { sync: Record<string, unknown> };
      expect(synced.sync).toMatchObject({ status: 'synced', crmId: 'crm-hcc:good', crmPayload: { Subject: 'sent' }, activity: { dispositionCode: 'SALE' } });
    });

    it('answers 404 for an unknown id and 400 for a malformed one', async () => {
      expect(await call('GET', '/admin/syncs/424242').then((r) => [r.status, r.json])).toEqual([404, { error: { code: 'not_found', message: 'no sync with id 424242' } }]);
      expect(await call('GET', '/admin/syncs/12abc').then((r) => [r.status, r.json])).toEqual([400, { error: { code: 'validation_failed', message: 'id: must be a positive integer id' } }]);
      // Past what a bigint holds, zero, negative: refused before any query.
      for (const path of ['/admin/syncs/99999999999999999999', '/admin/syncs/0', '/admin/syncs/-1', '/admin/events/1e3', '/admin/events/9007199254740993']) {
        expect(await call('GET', path).then((r) => [r.status, r.json]), path).toEqual([400, { error: { code: 'validation_failed', message: 'id: must be a positive integer id' } }]);
      }
      for (const path of ['/admin/syncs/0/replay', '/admin/syncs/99999999999999999999/discard']) {
        expect(await call('POST', path).then((r) => [r.status, r.json]), path).toEqual([400, { error: { code: 'validation_failed', message: 'id: must be a positive integer id' } }]);
      }
      expect(await call('GET', '/admin/audit?limit=501').then((r) => [r.status, r.json])).toEqual([400, { error: { code: 'validation_failed', message: 'limit: must be an integer from 1 to 500' } }]);
      expect(await call('GET', '/admin/events/424242').then((r) => [r.status, r.json])).toEqual([404, { error: { code: 'not_found', message: 'no event with id 424242' } }]);
      expect(await call('POST', '/admin/syncs/424242/replay').then((r) => [r.status, r.json])).toEqual([404, { error: { code: 'not_found', message: 'no sync with id 424242' } }]);
      expect(await call('POST', '/admin/syncs/424242/discard').then((r) => [r.status, r.json])).toEqual([404, { error: { code: 'not_found', message: 'no sync with id 424242' } }]);
    });

    it('shows one raw event with the sync it belongs to', async () => {
      const { bad } = await scenario();
      const [event] = await testDb.database.query<{ id: number }>(`SELECT id FROM webhook_events WHERE call_key = 'bad' ORDER BY id DESC LIMIT 1`);
      const res = await call('GET', `/admin/events/${event?.id}`);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ id: event?.id, syncId: bad, source: 'hcc', callKey: 'bad', eventType: 'call-ended', status: 'failed', payload: { disposition: 'NOSALE' } });
    });

    it('audits every read of raw payloads, who and from where', async () => {
      const { bad } = await scenario();
      const [event] = await testDb.database.query<{ id: number }>(`SELECT id FROM webhook_events WHERE call_key = 'bad' ORDER BY id LIMIT 1`);
      await call('GET', `/admin/syncs/${bad}`, { headers: { 'x-forwarded-for': '198.51.100.4' } });
      await call('GET', `/admin/events/${event?.id}`);
      await call('GET', '/admin/syncs/424242');
      expect((await auditRows(testDb.database)).map((a) => [a.action, a.subject, a.via, a.ip, a.user_agent, a.details])).toEqual([
        ['sync.view', `call_sync:${bad}`, 'api', '203.0.113.7', 'admin-test/1.0', { forwardedFor: '198.51.100.4' }],
        ['event.view', `webhook_event:${event?.id}`, 'api', '203.0.113.7', 'admin-test/1.0', { syncId: bad }],
      ]);
    });
  });

  describe('POST /admin/syncs/:id/replay', () => {
    it('refuses while the mapping still fails (nothing queued), then folds with the fixed mapping, queues, and the CRM gets the corrected activity', async () => {
      const { bad } = await scenario();
      const refused = await call('POST', `/admin/syncs/${bad}/replay`);
      expect(refused.status).toBe(422);
      expect(refused.json).toEqual({
        error: {
          code: 'mapping_failed',
          message: `the current mappings cannot fold sync ${bad}, so it was not queued: disposition: no label for code "NOSALE" in the value table. Fix the mapping and replay again.`,
        },
      });
      expect(await callRow(testDb.database, bad)).toMatchObject({ status: 'failed', attempts: 1, activity: null });

      mappings.fix('NOSALE', 'No sale');
      const res = await call('POST', `/admin/syncs/${bad}/replay`);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({
        id: bad,
        status: 'pending',
        previousStatus: 'failed',
        eventsRequeued: 2,
        eventsReclassified: 0,
        activity: { dispositionLabel: 'No sale', externalId: 'hcc:bad' },
      });
      expect(await callRow(testDb.database, bad)).toMatchObject({
        status: 'pending',
        attempts: 0,
        last_error: 'mapping failed: disposition: no label for code "NOSALE" in the value table',
        activity: { dispositionLabel: 'No sale' },
      });
      expect(await eventStatuses(testDb.database, 'bad')).toEqual(['pending', 'pending']);

      const audit = await auditRows(testDb.database);
      expect(audit).toEqual([
        {
          action: 'sync.replay',
          subject: `call_sync:${bad}`,
          ip: '203.0.113.7',
          user_agent: 'admin-test/1.0',
          via: 'api',
          details: { outcome: 'refused', code: 'mapping_failed', reason: (refused.json as { error: { message: string } }).error.message },
        },
        {
          action: 'sync.replay',
          subject: `call_sync:${bad}`,
          ip: '203.0.113.7',
          user_agent: 'admin-test/1.0',
          via: 'api',
          details: { outcome: 'queued', previousStatus: 'failed', previousAttempts: 1, eventsRequeued: 2 },
        },
      ]);

      expect(await worker().runOnce()).toBe(1);
      expect(await callRow(testDb.database, bad)).toMatchObject({ status: 'synced', last_error: null });
      expect(target.records.get('hcc:bad')?.fields).toMatchObject({ Subject: 'Call: No sale', CallDisposition: 'No sale' });
    });

    it('refuses with 409 while a worker is writing the call', async () => {
      const id = await seedCall(testDb.database, { callKey: 'busy', status: 'pending', leaseSeconds: 60, events: ['pending'] });
      const res = await call('POST', `/admin/syncs/${id}/replay`);
      expect(res.status).toBe(409);
      expect(res.json).toEqual({
        error: { code: 'conflict', message: `sync ${id} is being written to the CRM right now; replay it again once that attempt has finished` },
      });
      expect((await auditRows(testDb.database)).map((a) => [a.action, a.details['outcome']])).toEqual([['sync.replay', 'refused']]);
    });

    it('folds in the events stored as ignored whose type the mappings now sync, and makes them pending', async () => {
      mappings.ignore('note-added');
      await Promise.all([
        ingest.submit(newEvent('noted', 'call-ended', { disposition: 'SALE' })),
        ingest.submit({ ...newEvent('noted', 'note-added', { note: 'wants a callback' }), status: 'ignored' }),
      ]);
      await worker().runOnce();
      const [row] = await testDb.database.query<{ id: number }>(`SELECT id FROM call_syncs WHERE call_key = 'noted'`);
      const id = row?.id ?? 0;
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'synced', activity: { notes: 'call-ended' } });
      expect(target.records.get('hcc:noted')?.fields).toMatchObject({ Description: 'call-ended' });

      // RevOps moves note-added from ignore to sync.
      mappings.sync('note-added');
      const preview = (await call('GET', `/admin/syncs/${id}`)).json as { preview: { activity: { notes: string } } };
      expect(preview.preview.activity.notes).toBe('call-ended,note-added');
      const res = await call('POST', `/admin/syncs/${id}/replay`);
      expect(res.status).toBe(200);
      expect(res.json).toMatchObject({ previousStatus: 'synced', eventsRequeued: 0, eventsReclassified: 1, activity: { notes: 'call-ended,note-added' } });
      expect(await eventStatuses(testDb.database, 'noted')).toEqual(['synced', 'pending']);
      expect((await auditRows(testDb.database)).at(-1)?.details).toMatchObject({ outcome: 'queued', eventsReclassified: 1 });

      expect(await worker().runOnce()).toBe(1);
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'synced', activity: { notes: 'call-ended,note-added' } });
      expect(await eventStatuses(testDb.database, 'noted')).toEqual(['synced', 'synced']);
      expect(target.records.get('hcc:noted')?.fields).toMatchObject({ Description: 'call-ended,note-added' });
    });

    it('refuses with 409 a call with no events the mappings sync, queueing nothing', async () => {
      mappings.ignore('call-ended');
      const id = await seedCall(testDb.database, { callKey: 'hollow', status: 'failed', attempts: 2, events: ['failed'] });
      const res = await call('POST', `/admin/syncs/${id}/replay`);
      expect([res.status, res.json]).toEqual([
        409,
        {
          error: {
            code: 'conflict',
            message: `sync ${id} has no events the current mappings sync (retention removed them, or their types are ignored), so there is nothing to replay`,
          },
        },
      ]);
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'failed', attempts: 2 });
    });

    it('logs each admin action with the request id', async () => {
      const lines: Array<Record<string, unknown>> = [];
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      });
      app = buildApp(config, { log: createLogger({ level: 'info', destination: sink }) });
      const id = await seedCall(testDb.database, { callKey: 'logged', status: 'failed', events: ['failed'] });
      const other = await seedCall(testDb.database, { callKey: 'logged-2', status: 'failed', events: ['failed'] });
      expect((await call('POST', `/admin/syncs/${id}/replay`, { headers: { 'x-request-id': 'req-replay-1' } })).status).toBe(200);
      expect((await call('POST', `/admin/syncs/${other}/discard`, { headers: { 'x-request-id': 'req-discard-1' } })).status).toBe(200);
      expect((await call('POST', '/admin/syncs/replay', { body: { status: 'discarded' }, headers: { 'x-request-id': 'req-bulk-1' } })).status).toBe(200);
      const admin = lines.filter((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('admin '));
      expect(admin.map((l) => [l['msg'], l['reqId'], l['component']])).toEqual([
        ['admin sync.replay', 'req-replay-1', 'admin'],
        ['admin sync.discard', 'req-discard-1', 'admin'],
        ['admin syncs.replay', 'req-bulk-1', 'admin'],
      ]);
    });

    it('records X-Forwarded-For next to the socket address', async () => {
      const { bad } = await scenario();
      mappings.fix('NOSALE', 'No sale');
      await call('POST', `/admin/syncs/${bad}/replay`, { headers: { 'x-forwarded-for': '198.51.100.4, 10.0.0.1' } });
      expect((await auditRows(testDb.database))[0]).toMatchObject({ ip: '203.0.113.7', details: { forwardedFor: '198.51.100.4, 10.0.0.1', outcome: 'queued' } });
    });
  });

  describe('POST /admin/syncs/:id/discard', () => {
    it('discards a failed call and its unsynced events, and refuses a synced one', async () => {
      const { bad, good } = await scenario();
      const res = await call('POST', `/admin/syncs/${bad}/discard`);
      expect([res.status, res.json]).toEqual([200, { id: bad, status: 'discarded', previousStatus: 'failed', eventsDiscarded: 2 }]);
      expect((await callRow(testDb.database, bad))?.status).toBe('discarded');
      expect(await eventStatuses(testDb.database, 'bad')).toEqual(['discarded', 'discarded']);
      expect(await worker().runOnce()).toBe(0);

      const refused = await call('POST', `/admin/syncs/${good}/discard`);
      expect([refused.status, refused.json]).toEqual([409, { error: { code: 'conflict', message: `sync ${good} is already synced to the CRM; there is nothing to discard` } }]);
      expect((await auditRows(testDb.database)).map((a) => [a.action, a.subject, a.via, a.details['outcome']])).toEqual([
        ['sync.discard', `call_sync:${bad}`, 'api', 'discarded'],
        ['sync.discard', `call_sync:${good}`, 'api', 'refused'],
      ]);
    });
  });

  describe('POST /admin/syncs/replay', () => {
    it('shows what a dry run would replay, changing nothing, then replays and answers with the count', async () => {
      const { bad } = await scenario();
      const extra = await seedCall(testDb.database, { source: 'enreach', callKey: 'e1', status: 'failed', lastError: 'boom' });

      const dry = await call('POST', '/admin/syncs/replay', { body: { status: 'failed', source: 'hcc', since: '1h', dryRun: true } });
      expect(dry.status).toBe(200);
      expect(dry.json).toMatchObject({
        dryRun: true,
        filter: { status: 'failed', source: 'hcc', until: null },
        count: 1,
        skipped: 0,
        truncated: false,
        calls: [expect.objectContaining({ id: bad, callKey: 'bad', attempts: 1 })],
      });
      expect((await callRow(testDb.database, bad))?.status).toBe('failed');

      const real = await call('POST', '/admin/syncs/replay', { body: { status: 'failed', since: '1h' } });
      expect(real.status).toBe(200);
      expect(real.json).toMatchObject({ dryRun: false, filter: { status: 'failed', source: null }, count: 2, skipped: 0, eventsReclassified: 0 });
      expect((real.json as Record<string, unknown>)['calls']).toBeUndefined();
      expect(await callRow(testDb.database, bad)).toMatchObject({ status: 'pending', attempts: 0 });
      expect(await callRow(testDb.database, extra)).toMatchObject({ status: 'pending', attempts: 0 });

      const audit = await auditRows(testDb.database);
      expect(audit.map((a) => [a.action, a.via, a.subject])).toEqual([
        ['syncs.replay.dry_run', 'api', null],
        ['syncs.replay', 'api', null],
      ]);
      expect(audit[1]?.details).toMatchObject({
        outcome: 'done',
        count: 2,
        skipped: 0,
        batches: 1,
        eventsReclassified: 0,
        filter: { status: 'failed', source: null, given: { status: 'failed', since: '1h' } },
      });
    });

    it('makes ignored events of the replayed calls pending when their type is now synced', async () => {
      const a = await seedCall(testDb.database, { callKey: 'bulk-a', status: 'failed', events: ['failed'] });
      await addEvent(testDb.database, { callKey: 'bulk-a', eventType: 'note-added', status: 'ignored' });
      await addEvent(testDb.database, { callKey: 'bulk-a', eventType: 'agent-log', status: 'ignored' });
      mappings.ignore('agent-log');
      const res = await call('POST', '/admin/syncs/replay', { body: { status: 'failed' } });
      expect(res.json).toMatchObject({ count: 1, eventsReclassified: 1 });
      expect(await eventStatuses(testDb.database, 'bulk-a')).toEqual(['pending', 'pending', 'ignored']);
      expect(await callRow(testDb.database, a)).toMatchObject({ status: 'pending', version: 2 });
      expect((await auditRows(testDb.database))[0]?.details).toMatchObject({ outcome: 'done', count: 1, eventsReclassified: 1 });
    });

    it('writes the audit row in the transaction of the replay: when it cannot be written, nothing is replayed', async () => {
      const id = await seedCall(testDb.database, { callKey: 'atomic', status: 'failed', attempts: 3, events: ['failed'] });
      await testDb.database.query('ALTER TABLE admin_audit RENAME TO admin_audit_away');
      try {
        const res = await call('POST', '/admin/syncs/replay', { body: { status: 'failed' } });
        expect(res.status).toBe(500);
        expect((res.json as { error: { code: string } }).error.code).toBe('internal');
      } finally {
        await testDb.database.query('ALTER TABLE admin_audit_away RENAME TO admin_audit');
      }
      expect(await callRow(testDb.database, id)).toMatchObject({ status: 'failed', attempts: 3 });
      expect(await eventStatuses(testDb.database, 'atomic')).toEqual(['failed']);
    });

    const REQUIRED = 'status: required: name the status to replay (pending, synced, failed, discarded); nothing is replayed by default';
    const EXAMPLE = '{"status":"failed","since":"2h","dryRun":true}';
    it.each([
      ['{"status":"bogus"}', 400, { code: 'validation_failed', message: 'status: expected one of pending, synced, failed, discarded' }],
      ['{"stauts":"failed"}', 400, { code: 'validation_failed', message: `${REQUIRED}; stauts: unknown field` }],
      ['{"status":"failed","dryRun":"yes"}', 400, { code: 'validation_failed', message: 'dryRun: expected true or false' }],
      ['{"status":"failed","since":"2 hours"}', 400, { code: 'validation_failed', message: 'since: expected a relative time such as 30m, 2h or 7d, an ISO 8601 time with a zone such as 2025-11-21T08:00:00Z, or a date such as 2025-11-21' }],
      ['{"status":"failed","since":"999999w"}', 400, { code: 'validation_failed', message: 'since: goes too far back: a relative time reaches at most 3650d (10 years); use a date for anything older' }],
      ['{"status":"failed","until":"0000-01-01"}', 400, { code: 'validation_failed', message: 'until: is out of range: times must fall between 1970-01-01 and 9999-12-31' }],
      ['{}', 400, { code: 'validation_failed', message: REQUIRED }],
      ['{"dryRun":false}', 400, { code: 'validation_failed', message: REQUIRED }],
      ['{"status":', 400, { code: 'invalid_json', message: 'the body is not valid JSON' }],
      ['', 400, { code: 'invalid_json', message: `the body is empty; send a JSON object such as ${EXAMPLE}` }],
      ['  \n', 400, { code: 'invalid_json', message: `the body is empty; send a JSON object such as ${EXAMPLE}` }],
      ['[{"status":"failed"}]', 400, { code: 'not_json_object', message: `the body must be a JSON object such as ${EXAMPLE}` }],
      ['"failed"', 400, { code: 'not_json_object', message: `the body must be a JSON object such as ${EXAMPLE}` }],
      ['null', 400, { code: 'not_json_object', message: `the body must be a JSON object such as ${EXAMPLE}` }],
    ])('refuses %j', async (raw, status, error) => {
      await seedCall(testDb.database, { callKey: 'untouched', status: 'failed' });
      const res = await call('POST', '/admin/syncs/replay', { raw, headers: { 'content-type': 'application/json' } });
      expect([res.status, res.json]).toEqual([status, { error }]);
      expect((await testDb.database.query(`SELECT status FROM call_syncs`))[0]).toEqual({ status: 'failed' });
      expect(await auditRows(testDb.database)).toEqual([]);
    });

    it.each([
      ['no body and no Content-Type', undefined, undefined],
      ['JSON without its Content-Type', '{"status":"failed"}', undefined],
      ['a form', 'status=failed', 'application/x-www-form-urlencoded'],
      ['text', '{"status":"failed"}', 'text/plain'],
    ])('refuses %s with 415, replaying nothing', async (_label, raw, contentType) => {
      await seedCall(testDb.database, { callKey: 'untouched', status: 'failed' });
      const res = await app.request(
        '/admin/syncs/replay',
        { method: 'POST', headers: { ...AUTH, ...(contentType ? { 'content-type': contentType } : {}) }, ...(raw === undefined ? {} : { body: raw }) },
        CONN,
      );
      expect([res.status, await res.json()]).toEqual([
        415,
        { error: { code: 'unsupported_media_type', message: `send the body as JSON with Content-Type: application/json, such as ${EXAMPLE}` } },
      ]);
      expect((await testDb.database.query(`SELECT status FROM call_syncs`))[0]).toEqual({ status: 'failed' });
      expect(await auditRows(testDb.database)).toEqual([]);
    });

    it('takes a JSON Content-Type with parameters or a +json suffix', async () => {
      await seedCall(testDb.database, { callKey: 'charset', status: 'failed' });
      for (const type of ['application/json; charset=utf-8', 'application/merge-patch+json']) {
        const res = await call('POST', '/admin/syncs/replay', { raw: '{"status":"failed","dryRun":true}', headers: { 'content-type': type } });
        expect([res.status, (res.json as { count?: number }).count], type).toEqual([200, 1]);
      }
    });
  });

  it('answers 503 database_unavailable when the database cannot be reached', async () => {
    const down = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    const unreachable: Database = {
      ...testDb.database,
      query: () => Promise.reject(down),
      transaction: () => Promise.reject(down),
    };
    app = buildApp(config, { database: unreachable });
    for (const [method, path, body] of [
      ['GET', '/admin/syncs', undefined],
      ['GET', '/admin/summary', undefined],
      ['POST', '/admin/syncs/1/replay', undefined],
      ['POST', '/admin/syncs/replay', { status: 'failed' }],
    ] as const) {
      const res = await call(method, path, body === undefined ? {} : { body });
      expect([res.status, res.json], `${method} ${path}`).toEqual([503, { error: { code: 'database_unavailable', message: 'the database cannot be reached right now; try again shortly' } }]);
    }
  });

  it('answers 500 internal without details when the database fails', async () => {
    await testDb.database.query('ALTER TABLE call_syncs RENAME TO call_syncs_away');
    try {
      const res = await call('GET', '/admin/syncs');
      expect(res.status).toBe(500);
      const body = res.json as { error: { code: string; message: string } };
      expect(body.error.code).toBe('internal');
      expect(body.error.message).toMatch(/^internal error; see the server log for request \S+$/);
    } finally {
      await testDb.database.query('ALTER TABLE call_syncs_away RENAME TO call_syncs');
    }
  });

  it('counts syncs by status and source, and lists the audit trail newest first', async () => {
    const { bad } = await scenario();
    await seedCall(testDb.database, { source: 'enreach', callKey: 'x', status: 'discarded' });
    const summary = await call('GET', '/admin/summary');
    expect(summary.json).toEqual({
      total: 4,
      byStatus: { pending: 1, synced: 1, failed: 1, discarded: 1 },
      bySource: [
        { source: 'enreach', pending: 0, synced: 0, failed: 0, discarded: 1, total: 1 },
        { source: 'hcc', pending: 1, synced: 1, failed: 1, discarded: 0, total: 3 },
      ],
    });
    await call('POST', `/admin/syncs/${bad}/discard`);
    await call('POST', '/admin/syncs/replay', { body: { status: 'discarded', dryRun: true } });
    const audit = await call('GET', '/admin/audit?limit=1');
    expect(audit.json).toMatchObject({ items: [{ action: 'syncs.replay.dry_run', via: 'api', ip: '203.0.113.7', details: { count: 2 } }] });
    expect((await call('GET', '/admin/audit?limit=0')).json).toEqual({ error: { code: 'validation_failed', message: 'limit: must be an integer from 1 to 500' } });
  });
});
