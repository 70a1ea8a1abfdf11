import { describe, expect, it } from 'vitest';
import { SECRETS } from '../../../test/support/app';
import { fixtureJson, fixtureText } from '../../../test/support/webhooks';
import { sha256Hex } from '../../core/secrets';
import { genesysOcs } from './adapter';
import { adapterConfig, RECEIVED_AT, webhook } from '../../../test/support/webhook-request';

const config = adapterConfig();
const MESSAGE_GUID = '5C1E7C2A-9B7B-4E1F-8D7A-2F0E8B6A1C01';

/** The fixture without GSW_MESSAGE_GUID, as a body whose only message id is in ETag. */
function withoutMessageGuid(): Record<string, unknown> {
  const { GSW_MESSAGE_GUID: _dropped, ...rest } = fixtureJson('genesys-ocs', 'contact-processed-answered.json');
  return rest;
}

describe('genesys-ocs verify', () => {
  it('accepts X-Api-Key equal to GENESYS_OCS_SECRET, and says what is wrong otherwise', () => {
    const body = fixtureText('genesys-ocs', 'contact-processed-answered.json');
    const verify = (headers: Record<string, string>, env = config) => genesysOcs.verify(webhook(body, { headers }), env, RECEIVED_AT);
    expect(verify({ 'x-api-key': SECRETS.GENESYS_OCS_SECRET })).toEqual({ ok: true });
    expect(verify({ 'x-api-key': `${SECRETS.GENESYS_OCS_SECRET}x` })).toEqual({ ok: false, reason: 'missing or wrong X-Api-Key header' });
    expect(verify({})).toEqual({ ok: false, reason: 'missing or wrong X-Api-Key header' });
    expect(verify({ 'x-api-key': '' }, adapterConfig({ GENESYS_OCS_SECRET: '' }))).toEqual({
      ok: false,
      reason: 'GENESYS_OCS_SECRET is not configured',
    });
  });
});

describe('genesys-ocs identify', () => {
  it('files a notification by GSW_MESSAGE_GUID and GSW_CALL_ATTEMPT_GUID, time exact to the millisecond', () => {
    const request = webhook(fixtureText('genesys-ocs', 'contact-processed-answered.json'), { headers: { etag: '"ignored-when-the-body-has-one"' } });
    expect(genesysOcs.identify(request, config)).toEqual({
      eventType: 'ContactProcessed',
      dedupeKey: MESSAGE_GUID,
      callKey: '0A3F9E2B-77C4-4D5A-9E61-0B9F8A7C6D01',
      vendorTime: new Date('2023-11-14T22:15:25.250Z'),
      vendorTimeRaw: '1700000125.250',
    });
  });

  it.each([
    ['a strong ETag', `"${MESSAGE_GUID}"`],
    ['a weak ETag', `W/"${MESSAGE_GUID}"`],
    ['an unquoted ETag', MESSAGE_GUID],
  ])('falls back to %s when the body has no GSW_MESSAGE_GUID: the same message gets the same key', (_label, etag) => {
    const request = webhook(withoutMessageGuid(), { headers: { etag } });
    expect(genesysOcs.identify(request, config).dedupeKey).toBe(MESSAGE_GUID);
  });

  it('falls back to a hash of the body when neither the body nor ETag names the message', () => {
    const request = webhook(withoutMessageGuid(), { headers: { etag: '""' } });
    expect(genesysOcs.identify(request, config).dedupeKey).toBe(`sha256:${sha256Hex(request.rawBody)}`);
  });
});
