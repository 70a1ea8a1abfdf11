import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../../test/support/db';
import { fixtureJson, fixtureText, vendorRequest } from '../../../test/support/webhooks';
import type { SourceName } from '../../core/event';
import { exact, metricValue, storedCalls, storedEvents, stubMappings, unreachableDatabase } from '../../../test/support/webhook-intake';


interface Case {
  source: SourceName;
  fixture: string;
  hccEvent?: string;
  expected: { eventType: string; dedupeKey: RegExp | string; callKey: RegExp | string; vendorTime: string | 'received'; vendorTimeRaw: string | null };
  keptHeaders: Record<string, string>;
}

const CASES: Case[] = [
  {
    source: 'genesys-ocs',
    fixture: 'contact-processed-answered.json',
    expected: {
      eventType: 'ContactProcessed',
      dedupeKey: '5C1E7C2A-9B7B-4E1F-8D7A-2F0E8B6A1C01',
      callKey: '0A3F9E2B-77C4-4D5A-9E61-0B9F8A7C6D01',
      vendorTime: '2023-11-14T22:15:25.250Z',
      vendorTimeRaw: '1700000125.250',
    },
    keptHeaders: { 'content-type': 'application/json', 'user-agent': 'OCS/8.1.528.15' },
  },
  {
    source: 'enreach',
    fixture: 'QueueCallInUserAllocated.json',
    expected: {
      eventType: 'QueueCallInUserAllocated',
      dedupeKey: '85b214f2-1d27-4262-87b6-8f55b3199400',
      callKey: '9cae633f-68d0-4315-8b9a-b83c7673d8dc',
      vendorTime: '2018-01-01T08:01:23.450Z',
      vendorTimeRaw: '2018-01-01T08:01:23.45',
    },
    keptHeaders: { 'content-type': 'application/json', 'x-benemen-event': 'QueueCallInUserAllocated' },
  },
  {
    source: 'ucontact',
    fixture: 'AgentRingNoAnswer.json',
    expected: {
      eventType: 'AgentRingNoAnswer',
      dedupeKey: /^sha256:[0-9a-f]{64}$/,
      callKey: /^event:sha256:[0-9a-f]{64}$/,
      // Malformed ('2023-48-13'): kept raw; the time falls back to when we received it.
      vendorTime: 'received',
      vendorTimeRaw: '2023-48-13 06:48:51',
    },
    keptHeaders: { 'content-type': 'application/json' },
  },
  {
    source: 'hcc',
    fixture: 'call-created.json',
    hccEvent: 'call-created',
    expected: {
      eventType: 'call-created',
      dedupeKey: /^call-created:11142:[0-9a-f]{64}$/,
      callKey: '11142',
      vendorTime: '2023-06-27T13:22:18.000Z',
      vendorTimeRaw: '2023-06-27 13:22:18',
    },
    keptHeaders: { 'content-type': 'application/json' },
  },
  {
    source: 'webex-cc',
    fixture: 'task_new.json',
    expected: {
      eventType: 'task:new',
      dedupeKey: /^task:new:[0-9a-f-]{36}:[0-9a-f]{64}$/,
      callKey: 'e1c9a6f2-3b4d-4c5e-9f60-7a8b9c0d1e01',
      vendorTime: '2022-10-14T21:06:51.000Z',
      vendorTimeRaw: '1665781611000',
    },
    keptHeaders: { 'content-type': 'application/json' },
  },
];

const SECRET_HEADER_NAMES = ['x-api-key', 'x-benemen-token', 'authorization', 'x-webexcc-signature'];

describe.each(testDbKinds())('webhook intake on %s', (kind) => {
  let testDb: TestDatabase;
  let t: TestApp;

  beforeAll(async () => {
    testDb = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await testDb.drop();
  });
  beforeEach(async () => {
    await testDb.database.query('TRUNCATE webhook_events, call_syncs RESTART IDENTITY CASCADE');
    t = buildTestApp({ database: testDb.database, mappings: stubMappings });
  });

  const post = (req: { path: string; init: RequestInit }) => t.app.request(req.path, req.init);
  const events = () => storedEvents(testDb.database);
  const calls = () => storedCalls(testDb.database);

  describe.each(CASES)('$source', (c) => {
    const body = () => fixtureText(c.source, c.fixture);
    const request = (overrides: Parameters<typeof vendorRequest>[2] = {}, text = body()) =>
      vendorRequest(c.source, text, { ...(c.hccEvent ? { hccEvent: c.hccEvent } : {}), ...overrides });

    it('stores an accepted event exactly, answers 200 with an empty body', async () => {
      const res = await post(request());
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('');

      const rows = await events();
      expect(rows).toHaveLength(1);
      const row = rows[0];
      expect(row).toMatchObject({
        source: c.source,
        event_type: c.expected.eventType,
        vendor_time_raw: c.expected.vendorTimeRaw,
        raw_body: body(),
        payload: fixtureJson(c.source, c.fixture),
        headers: c.keptHeaders,
        status: 'pending',
        attempts: 0,
      });
      expect(row?.dedupe_key).toMatch(typeof c.expected.dedupeKey === 'string' ? exact(c.expected.dedupeKey) : c.expected.dedupeKey);
      expect(row?.call_key).toMatch(typeof c.expected.callKey === 'string' ? exact(c.expected.callKey) : c.expected.callKey);
      expect(row?.vendor_time?.toISOString()).toBe(c.expected.vendorTime === 'received' ? row?.received_at.toISOString() : c.expected.vendorTime);
      for (const name of SECRET_HEADER_NAMES) expect(row?.headers).not.toHaveProperty(name);

      expect(await calls()).toEqual([{ source: c.source, call_key: row?.call_key, status: 'pending', version: 1 }]);
    });

    it('answers a re-delivery 200 and stores it once', async () => {
      expect((await post(request())).status).toBe(200);
      const again = await post(request());
      expect(again.status).toBe(200);
      expect(await again.text()).toBe('');
      expect(await events()).toHaveLength(1);
      expect((await calls())[0]?.version).toBe(1);
      expect(await metricValue(t, 'callsync_webhooks_duplicated_total', { source: c.source })).toBe(1);
    });

    it('refuses a wrong credential with 401 and stores nothing', async () => {
      const res = await post(request({ auth: 'wrong' }));
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: expect.stringMatching(new RegExp(`^${c.source}: missing or wrong`)) } });
      expect(await events()).toHaveLength(0);
    });

    it('refuses a missing credential with 401 and stores nothing', async () => {
      const res = await post(request({ auth: 'missing' }));
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
      expect(await events()).toHaveLength(0);
    });

    it('answers 401 when the source has no secret configured', async () => {
      const bare = buildTestApp({
        database: testDb.database,
        mappings: stubMappings,
        env: { GENESYS_OCS_SECRET: '', ENREACH_SECRET: '', UCONTACT_SECRET: '', HCC_SECRET: '', HCC_BASIC_USER: '', HCC_BASIC_PASSWORD: '', WEBEX_CC_SECRET: '' },
      });
      const req = request();
      const res = await bare.app.request(req.path, req.init);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/is not configured|is configured/);
      expect(await events()).toHaveLength(0);
    });

    it('refuses a malformed body with 400 saying what is wrong', async () => {
      const broken = body().replace(/}\s*$/, '');
      const res = await post(request({}, broken));
      expect(res.status).toBe(400);
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe('invalid_json');
      expect(json.error.message).toMatch(/^the body is not valid JSON: /);
      expect(await events()).toHaveLength(0);
    });

    it('refuses a JSON array with 400 not_json_object', async () => {
      const res = await post(request({}, '[1,2,3]'));
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({ error: { code: 'not_json_object', message: 'the body must be a JSON object, got an array' } });
      expect(await events()).toHaveLength(0);
    });

    it('refuses an oversized body with 413 before reading it', async () => {
      const small = buildTestApp({ database: testDb.database, mappings: stubMappings, env: { MAX_BODY_BYTES: '2048' } });
      const padded = JSON.stringify({ ...fixtureJson(c.source, c.fixture), padding: 'x'.repeat(4096) });
      const req = request({}, padded);
      const res = await small.app.request(req.path, req.init);
      expect(res.status).toBe(413);
      expect(res.headers.get('connection')).toBe('close');
      expect(await res.json()).toEqual({
        error: { code: 'payload_too_large', message: 'the body is larger than the 2048-byte limit (MAX_BODY_BYTES)' },
      });
      expect(await events()).toHaveLength(0);
    });

    it('answers 503 when the database is unreachable, so the vendor retries', async () => {
      const down = await unreachableDatabase(kind);
      const broken = buildTestApp({ database: down, mappings: stubMappings });
      const res = await broken.app.request(request().path, request().init);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({
        error: { code: 'database_unavailable', message: 'the event could not be stored right now; please retry' },
      });
    });
  });
});
