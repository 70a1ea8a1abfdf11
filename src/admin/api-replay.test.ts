import { Writable } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { type Config } from '../config';
import { testConfig } from '../../test/support/config';
import type { Database } from '../db/client';
import type { createApp } from '../http/app';
import type { IngestQueue } from '../outbox/ingest';
import { testDbKinds, type TestDatabase } from '../../test/support/db';
import { MemoryTarget } from '../../test/support/memory-target';
import { useAdminTestDatabase } from '../../test/support/admin-setup';
import { AUTH, CONN, adminCall, adminScenario, adminWorker, buildAdminApp, logger, type CallOptions } from '../../test/support/admin-api';
import { createLogger } from '../log';
import { ADMIN_TOKEN, FixableMappings, addEvent, auditRows, callRow, eventStatuses, newEvent, seedCall } from '../../test/support/admin';

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
});
