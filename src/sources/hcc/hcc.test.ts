import { describe, expect, it } from 'vitest';
import { SECRETS } from '../../../test/support/app';
import { fixtureJson, fixtureText } from '../../../test/support/webhooks';
import { sha256Hex } from '../../core/secrets';
import { hcc } from './adapter';
import { adapterConfig, RECEIVED_AT, webhook } from '../../../test/support/webhook-request';

const config = adapterConfig();
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('hcc verify', () => {
  const body = fixtureText('hcc', 'call-created.json');
  const verify = (headers: Record<string, string>, env = config) =>
    hcc.verify(webhook(body, { headers, params: { event: 'call-created' } }), env, RECEIVED_AT);
  const refused = { ok: false, reason: 'missing or wrong x-api-key or Basic credentials' };

  it('accepts x-api-key = HCC_SECRET', () => {
    expect(verify({ 'x-api-key': SECRETS.HCC_SECRET })).toEqual({ ok: true });
    expect(verify({ 'x-api-key': 'wrong' })).toEqual(refused);
    expect(verify({})).toEqual(refused);
  });

  it('accepts Basic only when both the user and the password are right', () => {
    expect(verify({ authorization: basic(SECRETS.HCC_BASIC_USER, SECRETS.HCC_BASIC_PASSWORD) })).toEqual({ ok: true });
    expect(verify({ authorization: basic(SECRETS.HCC_BASIC_USER, 'wrong') })).toEqual(refused);
    expect(verify({ authorization: basic('wrong', SECRETS.HCC_BASIC_PASSWORD) })).toEqual(refused);
    expect(verify({ authorization: basic(SECRETS.HCC_BASIC_PASSWORD, SECRETS.HCC_BASIC_USER) })).toEqual(refused);
    expect(verify({ authorization: `bAsIc ${Buffer.from(`${SECRETS.HCC_BASIC_USER}:${SECRETS.HCC_BASIC_PASSWORD}`).toString('base64')}` })).toEqual({
      ok: true,
    });
  });

  it('accepts only the schemes configured: an empty expected value never matches an empty credential', () => {
    const keyOnly = adapterConfig({ HCC_BASIC_USER: undefined, HCC_BASIC_PASSWORD: undefined });
    expect(verify({ authorization: basic('', '') }, keyOnly)).toEqual(refused);
    expect(verify({ 'x-api-key': SECRETS.HCC_SECRET }, keyOnly)).toEqual({ ok: true });
    const basicOnly = adapterConfig({ HCC_SECRET: undefined });
    expect(verify({ 'x-api-key': '' }, basicOnly)).toEqual(refused);
    expect(verify({ authorization: basic(SECRETS.HCC_BASIC_USER, SECRETS.HCC_BASIC_PASSWORD) }, basicOnly)).toEqual({ ok: true });
    const none = adapterConfig({ HCC_SECRET: undefined, HCC_BASIC_USER: undefined, HCC_BASIC_PASSWORD: undefined });
    expect(verify({ 'x-api-key': '' }, none)).toEqual({ ok: false, reason: 'neither HCC_SECRET nor HCC_BASIC_USER is configured' });
  });
});

describe('hcc identify', () => {
  it('files an event by (event, call_id, body hash); call_date is read in HCC_TIMEZONE', () => {
    const request = webhook(fixtureText('hcc', 'call-created.json'), { params: { event: 'call-created' } });
    expect(hcc.identify(request, config)).toEqual({
      eventType: 'call-created',
      dedupeKey: `call-created:11142:${sha256Hex(request.rawBody)}`,
      callKey: '11142',
      vendorTime: new Date('2023-06-27T13:22:18.000Z'),
      vendorTimeRaw: '2023-06-27 13:22:18',
    });
    // Chicago is UTC-5 in June (CDT).
    expect(hcc.identify(request, adapterConfig({ HCC_TIMEZONE: 'America/Chicago' })).vendorTime).toEqual(new Date('2023-06-27T18:22:18.000Z'));
  });

  it('tells the events of one call apart by their URL event, and keeps a re-delivery the same', () => {
    const body = fixtureText('hcc', 'call-created.json');
    const created = hcc.identify(webhook(body, { params: { event: 'call-created' } }), config).dedupeKey;
    const ended = hcc.identify(webhook(body, { params: { event: 'call-ended' } }), config).dedupeKey;
    expect(ended).not.toBe(created);
    expect(hcc.identify(webhook(body, { params: { event: 'call-created' } }), config).dedupeKey).toBe(created);
  });

  it('files regulation-f-declined, which names no call and no time, under its own body', () => {
    const request = webhook(fixtureText('hcc', 'regulation-f-declined.json'), { params: { event: 'regulation-f-declined' } });
    expect(hcc.identify(request, config)).toEqual({
      eventType: 'regulation-f-declined',
      dedupeKey: `regulation-f-declined:-:${sha256Hex(request.rawBody)}`,
      callKey: null,
      vendorTime: null,
      vendorTimeRaw: null,
    });
    // Another decline for the same lead (a different reason) is another event.
    const other = webhook({ ...fixtureJson('hcc', 'regulation-f-declined.json'), reason: 'RF: time_of_day' }, { params: { event: 'regulation-f-declined' } });
    expect(hcc.identify(other, config).dedupeKey).not.toBe(hcc.identify(request, config).dedupeKey);
  });
});
