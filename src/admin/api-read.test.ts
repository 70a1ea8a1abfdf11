import { beforeEach, describe, expect, it } from 'vitest';
import { type Config } from '../config';
import { testConfig } from '../../test/support/config';
import type { Database } from '../db/client';
import type { createApp } from '../http/app';
import type { IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget } from '../../test/support/memory-target';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { adminCall, adminScenario, adminWorker, buildAdminApp, logger, type CallOptions } from '../../test/support/admin-api';
import { encodeCursor } from './read-side';
import { ADMIN_TOKEN, FixableMappings, auditRows, seedCall } from '../../test/support/admin';

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
