import { describe, expect, it } from 'vitest';
import { SECRETS } from '../../../test/support/app';
import { fixtureJson, fixtureText } from '../../../test/support/webhooks';
import { sha256Hex } from '../../core/secrets';
import { enreach } from './adapter';
import { adapterConfig, RECEIVED_AT, webhook } from '../../../test/support/webhook-request';

const config = adapterConfig();

describe('enreach verify', () => {
  it('accepts X-Benemen-Token equal to ENREACH_SECRET only', () => {
    const body = fixtureText('enreach', 'QueueCallInUserAllocated.json');
    const verify = (headers: Record<string, string>, env = config) => enreach.verify(webhook(body, { headers }), env, RECEIVED_AT);
    expect(verify({ 'x-benemen-token': SECRETS.ENREACH_SECRET })).toEqual({ ok: true });
    expect(verify({ 'x-benemen-token': 'MySecretString' })).toEqual({ ok: false, reason: 'missing or wrong X-Benemen-Token header' });
    expect(verify({})).toEqual({ ok: false, reason: 'missing or wrong X-Benemen-Token header' });
    expect(verify({ 'x-benemen-token': SECRETS.ENREACH_SECRET }, adapterConfig({ ENREACH_SECRET: undefined }))).toEqual({
      ok: false,
      reason: 'ENREACH_SECRET is not configured',
    });
  });
});

describe('enreach identify', () => {
  it('files an event by Id and CallId; a Timestamp without a zone is UTC', () => {
    const request = webhook(fixtureText('enreach', 'QueueCallInUserAllocated.json'), {
      headers: { 'x-benemen-event': 'QueueCallInUserAllocated' },
    });
    expect(enreach.identify(request, config)).toEqual({
      eventType: 'QueueCallInUserAllocated',
      dedupeKey: '85b214f2-1d27-4262-87b6-8f55b3199400',
      callKey: '9cae633f-68d0-4315-8b9a-b83c7673d8dc',
      vendorTime: new Date('2018-01-01T08:01:23.450Z'),
      vendorTimeRaw: '2018-01-01T08:01:23.45',
    });
  });

  it('takes the type from X-Benemen-Event over the body EventType, and from the body without the header', () => {
    const body = { ...fixtureJson('enreach', 'QueueCallInUserAllocated.json'), EventType: 'QueueCallInArrived' };
    expect(enreach.identify(webhook(body, { headers: { 'x-benemen-event': 'UserCallInComing' } }), config).eventType).toBe('UserCallInComing');
    expect(enreach.identify(webhook(body), config).eventType).toBe('QueueCallInArrived');
    expect(enreach.identify(webhook(body, { headers: { 'x-benemen-event': '  ' } }), config).eventType).toBe('QueueCallInArrived');
    const { EventType: _dropped, ...untyped } = body;
    expect(enreach.identify(webhook(untyped), config).eventType).toBe('Unknown');
  });

  it('keys a CallbackChanged by its CallBackId, other events by CallId', () => {
    const callback = enreach.identify(webhook(fixtureText('enreach', 'CallbackChanged.json')), config);
    expect(callback).toMatchObject({
      eventType: 'CallbackChanged',
      dedupeKey: '5d9b7e2a-8c1f-4b3e-a2d4-6f7e8d9c0b1a',
      callKey: '77aa0c1e-5d3b-4c2a-9f10-2b3c4d5e6f70',
      vendorTime: new Date('2018-01-01T10:15:02.100Z'),
    });
  });

  it('reads a .NET seven-digit fraction, with or without Z', () => {
    const body = fixtureJson('enreach', 'QueueCallInUserAllocated.json');
    expect(enreach.identify(webhook({ ...body, Timestamp: '2018-01-01T08:01:23.4567891' }), config).vendorTime).toEqual(
      new Date('2018-01-01T08:01:23.456Z'),
    );
    expect(enreach.identify(webhook({ ...body, Timestamp: '2018-01-01T08:01:23.4567891Z' }), config).vendorTime).toEqual(
      new Date('2018-01-01T08:01:23.456Z'),
    );
  });

  it('falls back to a hash of the body when the event has no Id', () => {
    const { Id: _dropped, ...rest } = fixtureJson('enreach', 'QueueCallInUserAllocated.json');
    const request = webhook(rest);
    expect(enreach.identify(request, config).dedupeKey).toBe(`sha256:${sha256Hex(request.rawBody)}`);
  });
});
