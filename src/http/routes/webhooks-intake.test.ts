import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildTestApp, SECRETS, webexSignature, type TestApp } from '../../../test/support/app';
import { createTestDatabase, testDbKinds, type TestDatabase } from '../../../test/support/db';
import { fixtureJson, fixtureText, vendorRequest } from '../../../test/support/webhooks';
import type { SourceName } from '../../core/event';
import { distinctRequest, metricValue, storedCalls, storedEvents, stubMappings } from '../../../test/support/webhook-intake';

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
