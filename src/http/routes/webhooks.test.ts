import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../../db/client';
import type { MappingSet } from '../../mapping/mapping-set';
import type { EventDisposition } from '../../core/event';
import type { SourceName } from '../../core/event';
import { buildTestApp, SECRETS, webexSignature, type TestApp } from '../../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../../test/support/db';
import { fixtureJson, fixtureText, vendorRequest } from '../../../test/support/webhooks';

/** Intake only asks the mappings what to do with an event type; these tests pin that answer. */
const DISPOSITIONS: Record<string, EventDisposition> = {
  'enreach/QueueStatus': 'ignore',
  'ucontact/AgentLog': 'ignore',
  'webex-cc/agent:state_change': 'drop',
};
const stubMappings: MappingSet = {
  classify: (source, eventType) => DISPOSITIONS[`${source}/${eventType}`] ?? 'sync',
  fold: () => Promise.reject(new Error('not used by intake')),
  toCrm: () => Promise.reject(new Error('not used by intake')),
};

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
  const events = () =>
    testDb.database.query<{
      source: string;
      event_type: string;
      dedupe_key: string;
      call_key: string;
      vendor_time: Date | null;
      vendor_time_raw: string | null;
      received_at: Date;
      raw_body: string;
      payload: unknown;
      headers: Record<string, string>;
      status: string;
      attempts: number;
    }>('SELECT * FROM webhook_events ORDER BY id');
  const calls = () =>
    testDb.database.query<{ source: string; call_key: string; status: string; version: number }>(
      'SELECT source, call_key, status, version FROM call_syncs ORDER BY id',
    );

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

  it('reads zone-less HCC call_date in HCC_TIMEZONE', async () => {
    const chicago = buildTestApp({ database: testDb.database, mappings: stubMappings, env: { HCC_TIMEZONE: 'America/Chicago' } });
    const req = vendorRequest('hcc', fixtureText('hcc', 'call-saved.json'), { hccEvent: 'call-saved' });
    expect((await chicago.app.request(req.path, req.init)).status).toBe(200);
    expect((await events())[0]?.vendor_time?.toISOString()).toBe('2023-06-27T18:22:18.000Z');
  });

  it('accepts HCC Basic credentials as well as the API key', async () => {
    const req = vendorRequest('hcc', fixtureText('hcc', 'call-ended.json'), { hccEvent: 'call-ended', auth: 'missing' });
    req.init.headers.authorization = `Basic ${Buffer.from(`${SECRETS.HCC_BASIC_USER}:${SECRETS.HCC_BASIC_PASSWORD}`).toString('base64')}`;
    expect((await post(req)).status).toBe(200);
    req.init.headers.authorization = `Basic ${Buffer.from(`${SECRETS.HCC_BASIC_USER}:nope`).toString('base64')}`;
    const wrong = vendorRequest('hcc', fixtureText('hcc', 'call-saved.json'), { hccEvent: 'call-saved', auth: 'missing' });
    wrong.init.headers.authorization = req.init.headers.authorization;
    expect((await post(wrong)).status).toBe(401);
    expect((await events()).map((e) => e.event_type)).toEqual(['call-ended']);
  });

  it('keeps the events of one HCC call apart by event and body, and groups them by call_id', async () => {
    for (const event of ['call-created', 'call-ended', 'call-saved']) {
      const req = vendorRequest('hcc', fixtureText('hcc', `${event}.json`), { hccEvent: event });
      expect((await post(req)).status).toBe(200);
    }
    expect((await events()).map((e) => e.event_type)).toEqual(['call-created', 'call-ended', 'call-saved']);
    expect(await calls()).toEqual([{ source: 'hcc', call_key: '11142', status: 'pending', version: 3 }]);
  });

  it('answers 404 for an unknown HCC event and an unknown source', async () => {
    const req = vendorRequest('hcc', fixtureText('hcc', 'call-created.json'), { hccEvent: 'call-exploded' });
    const res = await post(req);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        code: 'unknown_event',
        message: "unknown hcc event 'call-exploded'; expected one of call-created, call-ended, call-saved, regulation-f-declined",
      },
    });
    const unknown = await t.app.request('/webhooks/five9', { method: 'POST', body: '{}' });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({
      error: { code: 'unknown_source', message: "unknown source 'five9'; known sources: genesys-ocs, enreach, ucontact, hcc, webex-cc" },
    });
    expect(await events()).toHaveLength(0);
  });

  it('answers 405 to a GET on a webhook URL', async () => {
    const res = await t.app.request('/webhooks/enreach');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
  });

  it('checks the Webex timestamp against the body and the clock', async () => {
    const event = fixtureJson('webex-cc', 'task_connected.json') as { comciscotimestamp: number };
    const sentAt = event.comciscotimestamp;
    const clock = buildTestApp({ database: testDb.database, mappings: stubMappings, now: () => new Date(sentAt + 60_000) });
    const text = JSON.stringify(event);
    const send = (timestamp: string) =>
      clock.app.request('/webhooks/webex-cc', {
        method: 'POST',
        headers: { 'x-webexcc-signature': webexSignature(text), 'x-webexcc-timestamp': timestamp },
        body: text,
      });
    const mismatch = await send(String(sentAt + 1));
    expect(mismatch.status).toBe(401);
    expect(((await mismatch.json()) as { error: { message: string } }).error.message).toBe(
      'webex-cc: X-WebExCC-Timestamp does not match the body comciscotimestamp',
    );
    expect((await send(String(sentAt))).status).toBe(200);

    const late = buildTestApp({ database: testDb.database, mappings: stubMappings, now: () => new Date(sentAt + 6 * 60_000) });
    const stale = await late.app.request('/webhooks/webex-cc', {
      method: 'POST',
      headers: { 'x-webexcc-signature': webexSignature(text), 'x-webexcc-timestamp': String(sentAt) },
      body: text,
    });
    expect(stale.status).toBe(401);
    expect(((await stale.json()) as { error: { message: string } }).error.message).toBe(
      'webex-cc: X-WebExCC-Timestamp is more than 5 minutes from now',
    );
    expect(await events()).toHaveLength(1);
  });

  it('keys Enreach CallbackChanged by CallBackId', async () => {
    expect((await post(vendorRequest('enreach', fixtureText('enreach', 'CallbackChanged.json')))).status).toBe(200);
    expect((await events())[0]?.call_key).toBe('77aa0c1e-5d3b-4c2a-9f10-2b3c4d5e6f70');
  });

  it('keeps ignored event types without a call to sync, and drops dropped ones', async () => {
    expect((await post(vendorRequest('enreach', fixtureText('enreach', 'QueueStatus.json')))).status).toBe(200);
    expect((await post(vendorRequest('webex-cc', fixtureText('webex-cc', 'agent_state_change.json')))).status).toBe(200);
    expect((await events()).map((e) => [e.event_type, e.status])).toEqual([['QueueStatus', 'ignored']]);
    expect(await calls()).toEqual([]);
    expect(await metricValue(t, 'callsync_webhooks_accepted_total', { source: 'webex-cc', disposition: 'drop' })).toBe(1);
    expect(await metricValue(t, 'callsync_webhooks_accepted_total', { source: 'enreach', disposition: 'ignore' })).toBe(1);
  });

  it('stores a body with \\u0000 and a lone surrogate: raw exactly, parsed made storable', async () => {
    const text = '{"event":"FinishInteraction","guid":"g-1","comment":"a\\u0000b\\ud800c","date":"2023-06-13 10:21:40"}';
    expect((await post(vendorRequest('ucontact', text))).status).toBe(200);
    const [row] = await events();
    expect(row?.raw_body).toBe(text);
    expect(row?.payload).toMatchObject({ comment: 'a\uFFFDb\uFFFDc' });
  });

  it('refuses a JSON object nested deeper than any database stores, with 400 before storing anything', async () => {
    const depth = 100_000;
    const text = `{"event":"FinishInteraction","guid":"deep","note":"\\u00e9","x":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const res = await post(vendorRequest('ucontact', text));
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { code: 'bad_request', message: 'the body nests objects or arrays deeper than 512 levels' } });
    expect(await events()).toHaveLength(0);
    // A realistic nesting is stored as usual.
    const ok = `{"event":"FinishInteraction","guid":"nested","x":${'{"a":'.repeat(100)}1${'}'.repeat(100)}}`;
    expect((await post(vendorRequest('ucontact', ok))).status).toBe(200);
  });

  it('refuses a declared Content-Length over the limit without reading a byte of the body', async () => {
    const small = buildTestApp({ database: testDb.database, mappings: stubMappings, env: { MAX_BODY_BYTES: '2048' } });
    let pulled = false;
    const body = new ReadableStream<Uint8Array>({ pull: (controller) => ((pulled = true), controller.enqueue(new Uint8Array(4096))) }, { highWaterMark: 0 });
    const req = vendorRequest('hcc', '{}', { hccEvent: 'call-ended' });
    const res = await small.app.request(req.path, { ...req.init, body, headers: { ...req.init.headers, 'content-length': '4096' }, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: { code: 'payload_too_large', message: 'the body is larger than the 2048-byte limit (MAX_BODY_BYTES)' } });
    expect(pulled).toBe(false);
    expect(await events()).toHaveLength(0);
  });

  it('answers 400, not 500, to a body the client stopped sending midway', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"call_id":'));
        controller.error(new Error('socket hang up'));
      },
    });
    const req = vendorRequest('hcc', '{}', { hccEvent: 'call-ended' });
    const res = await post({ path: req.path, init: { ...req.init, body, duplex: 'half' } as RequestInit });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: { code: 'bad_request', message: 'the request body could not be read to its end (the client closed the connection?)' },
    });
    expect(await events()).toHaveLength(0);
  });

  it('refuses an event id too long to be an id, saying so', async () => {
    const text = JSON.stringify({ ...fixtureJson('webex-cc', 'task_new.json'), id: 'x'.repeat(1_001) });
    const res = await post(vendorRequest('webex-cc', text));
    expect(res.status).toBe(400);
    expect((await res.json()) as unknown).toEqual({
      error: { code: 'bad_request', message: expect.stringMatching(/^the event's event id \(dedupe key\) is \d+ characters long; at most 1000 are accepted$/) as unknown },
    });
    expect(await events()).toHaveLength(0);
  });

  it('stores exactly the distinct events of 250 concurrent requests with duplicates among them', async () => {
    const distinct: Array<{ path: string; init: RequestInit }> = [];
    for (let i = 0; i < 150; i += 1) {
      const source = (['genesys-ocs', 'enreach', 'ucontact', 'hcc', 'webex-cc'] as const)[i % 5] as SourceName;
      distinct.push(distinctRequest(source, i));
    }
    const duplicates = Array.from({ length: 100 }, (_, i) => distinct[(i * 7) % distinct.length] as (typeof distinct)[number]);
    const all = [...distinct, ...duplicates].sort(() => Math.random() - 0.5);
    const statuses = await Promise.all(all.map(async (req) => (await post(req)).status));
    expect(statuses.every((s) => s === 200)).toBe(true);
    const [count] = await testDb.database.query<{ n: number; keys: number }>(
      'SELECT count(*)::int AS n, count(DISTINCT (source, dedupe_key))::int AS keys FROM webhook_events',
    );
    expect(count).toEqual({ n: 150, keys: 150 });
    const [syncs] = await testDb.database.query<{ n: number; events: number }>(
      'SELECT count(*)::int AS n, sum(version)::int AS events FROM call_syncs',
    );
    expect(syncs).toEqual({ n: 150, events: 150 });
  });
});

function exact(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/** A realistic, unique event of each source (fixture with a per-index id). */
function distinctRequest(source: SourceName, i: number): { path: string; init: RequestInit } {
  switch (source) {
    case 'genesys-ocs': {
      const body = { ...fixtureJson(source, 'contact-processed-answered.json'), GSW_MESSAGE_GUID: `msg-${i}`, GSW_CALL_ATTEMPT_GUID: `att-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'enreach': {
      const body = { ...fixtureJson(source, 'QueueCallInArrived.json'), Id: `id-${i}`, CallId: `call-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'ucontact': {
      const body = { ...fixtureJson(source, 'FinishInteraction.json'), guid: `guid-${i}` };
      return vendorRequest(source, JSON.stringify(body));
    }
    case 'hcc': {
      const body = { ...fixtureJson(source, 'call-ended.json'), call_id: 50_000 + i };
      return vendorRequest(source, JSON.stringify(body), { hccEvent: 'call-ended' });
    }
    case 'webex-cc': {
      const base = fixtureJson(source, 'task_connected.json') as { data: Record<string, unknown> };
      const body = { ...base, id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, data: { ...base.data, taskId: `task-${i}` } };
      return vendorRequest(source, JSON.stringify(body));
    }
  }
}

const unreachable = new Map<string, Promise<Database>>();

/** A database that cannot answer: nothing listens on port 1 (Postgres), or a closed PGlite. */
function unreachableDatabase(kind: 'pglite' | 'postgres'): Promise<Database> {
  let db = unreachable.get(kind);
  if (!db) {
    db =
      kind === 'postgres'
        ? openDatabase({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none', poolSize: 1 })
        : createTestDatabase('pglite').then(async (t) => {
            await t.drop();
            return t.database;
          });
    unreachable.set(kind, db);
  }
  return db;
}

async function metricValue(t: TestApp, name: string, labels: Record<string, string>): Promise<number> {
  const metric = await t.metrics.registry.getSingleMetric(name)?.get();
  const value = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return value?.value ?? 0;
}
