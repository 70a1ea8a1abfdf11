import { beforeEach, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../core/errors';
import { type Config } from '../config';
import { testConfig } from '../../test/support/config';
import type { Database } from '../db/client';
import type { createApp } from '../http/app';
import type { IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget } from '../../test/support/memory-target';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { AUTH, CONN, adminCall, adminScenario, adminWorker, buildAdminApp, logger, type CallOptions } from '../../test/support/admin-api';
import { adminApi } from './api';
import { ADMIN_DISABLED_MESSAGE } from './auth';
import { AdminService } from './service';
import { ADMIN_TOKEN, FixableMappings, auditRows, callRow, seedCall } from '../../test/support/admin';

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
    const built = buildAdminApp({ config: appConfig, database: options.database ?? testDb.database, ingestDatabase: testDb.database, log: options.log ?? logger, mappings, target });
    ingest = built.ingest;
    return built.app;
  }

  const worker = () => adminWorker(testDb.database, mappings, target);
  const call = (method: string, path: string, options: CallOptions = {}) => adminCall(app, method, path, options);
  const scenario = () => adminScenario(ingest, target, worker, testDb.database);

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

});
