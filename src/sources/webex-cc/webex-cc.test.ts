import { describe, expect, it } from 'vitest';
import { webexSignature } from '../../../test/support/app';
import { fixtureJson, fixtureText, sequenceEvents } from '../../../test/support/webhooks';
import { canonicalJson } from '../adapter-helpers';
import { sha256Hex } from '../../core/secrets';
import { adapterConfig, webhook } from '../../../test/support/webhook-request';
import { WEBEX_TIMESTAMP_TOLERANCE_MS, webexCc } from './adapter';

const config = adapterConfig();

describe('webex-cc verify', () => {
  const text = fixtureText('webex-cc', 'task_connected.json');
  const sentAt = (fixtureJson('webex-cc', 'task_connected.json') as { comciscotimestamp: number }).comciscotimestamp;
  const verify = (body: string, headers: Record<string, string>, now = new Date(sentAt)) => {
    const request = webhook(body, { headers });
    return webexCc.verify(request, config, now);
  };

  it('accepts the hex HMAC-SHA256 of the raw body, in either case, and nothing else', () => {
    expect(verify(text, { 'x-webexcc-signature': webexSignature(text) })).toEqual({ ok: true });
    expect(verify(text, { 'x-webexcc-signature': webexSignature(text).toUpperCase() })).toEqual({ ok: true });
    expect(verify(text, { 'x-webexcc-signature': webexSignature(`${text} `) })).toEqual({ ok: false, reason: 'missing or wrong X-WebexCC-Signature' });
    expect(verify(text, {})).toEqual({ ok: false, reason: 'missing or wrong X-WebexCC-Signature' });
  });

  it('refuses X-WebExCC-Timestamp when the body has no comciscotimestamp to match it', () => {
    const { comciscotimestamp: _dropped, ...rest } = fixtureJson('webex-cc', 'task_connected.json');
    const body = JSON.stringify(rest);
    expect(verify(body, { 'x-webexcc-signature': webexSignature(body), 'x-webexcc-timestamp': String(sentAt) })).toEqual({
      ok: false,
      reason: 'X-WebExCC-Timestamp does not match the body comciscotimestamp',
    });
    // Without the header (a v1 delivery) the same body is fine.
    expect(verify(body, { 'x-webexcc-signature': webexSignature(body) })).toEqual({ ok: true });
  });

  it('accepts a matching timestamp within 5 minutes either way, and refuses one outside or unreadable', () => {
    const headers = { 'x-webexcc-signature': webexSignature(text), 'x-webexcc-timestamp': String(sentAt) };
    expect(verify(text, headers, new Date(sentAt + WEBEX_TIMESTAMP_TOLERANCE_MS))).toEqual({ ok: true });
    expect(verify(text, headers, new Date(sentAt - WEBEX_TIMESTAMP_TOLERANCE_MS))).toEqual({ ok: true });
    expect(verify(text, headers, new Date(sentAt + WEBEX_TIMESTAMP_TOLERANCE_MS + 1))).toEqual({
      ok: false,
      reason: 'X-WebExCC-Timestamp is more than 5 minutes from now',
    });
    expect(verify(text, { ...headers, 'x-webexcc-timestamp': 'now' })).toEqual({ ok: false, reason: 'X-WebExCC-Timestamp is not epoch milliseconds' });
  });
});

/**
 * Rows of seed 004's "Callback with multiple Caller RONAs" table that share
 * one WebhookID (WebhookID_02): a task:connect and an agent:state_change at
 * 18:49:28, then a task:parked and another agent:state_change at 18:49:44.
 */
const webhookId02Rows = () => sequenceEvents('webex-cc', 'sequence-shared-webhook-id.json');

describe('webex-cc identify', () => {
  it('files an event by (type, envelope id, hash of data), the task and createdTime', () => {
    const body = fixtureJson('webex-cc', 'task_new.json');
    expect(webexCc.identify(webhook(body), config)).toEqual({
      eventType: 'task:new',
      dedupeKey: `task:new:dee0a3ef-f1cf-5f48-b583-c3768ba48dee:${sha256Hex(canonicalJson(body.data))}`,
      callKey: 'e1c9a6f2-3b4d-4c5e-9f60-7a8b9c0d1e01',
      vendorTime: new Date('2022-10-14T21:06:51.000Z'),
      vendorTimeRaw: '1665781611000',
    });
  });

  it('keeps apart every row of seed 004 that shares one WebhookID, the two agent:state_change rows included', () => {
    const rows = webhookId02Rows();
    expect(new Set(rows.map((row) => row.id)).size).toBe(1);
    const keys = rows.map((row) => webexCc.identify(webhook(row), config).dedupeKey);
    expect(new Set(keys).size).toBe(4);
  });

  it('matches a re-delivery, even restamped and serialised in another key order', () => {
    for (const row of webhookId02Rows()) {
      const first = webexCc.identify(webhook(row), config).dedupeKey;
      const data = row.data as Record<string, unknown>;
      const reordered = Object.fromEntries(Object.entries(data).reverse());
      const redelivery = { ...row, comciscotimestamp: (row.comciscotimestamp as number) + 90_000, data: reordered };
      expect(JSON.stringify(redelivery.data)).not.toBe(JSON.stringify(data));
      expect(webexCc.identify(webhook(redelivery), config).dedupeKey).toBe(first);
    }
  });

  it('reads createdTime as a number or a digit string, and hashes the body when there is no data', () => {
    const body = fixtureJson('webex-cc', 'task_new.json') as { data: Record<string, unknown> };
    const asText = { ...body, data: { ...body.data, createdTime: '1665781611000' } };
    expect(webexCc.identify(webhook(asText), config).vendorTime).toEqual(new Date('2022-10-14T21:06:51.000Z'));
    const { data: _dropped, ...bare } = body;
    const request = webhook(bare);
    expect(webexCc.identify(request, config)).toMatchObject({ dedupeKey: `sha256:${sha256Hex(request.rawBody)}`, callKey: null, vendorTime: null });
  });
});
