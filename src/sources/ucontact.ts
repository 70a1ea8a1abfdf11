import { bodyHashKey, parseVendorTime, safeEqual, stringField } from './common';
import type { SourceAdapter } from './types';

/**
 * uContact event notifications (seed 002). uContact has no webhook auth and
 * only stores a URL, so the secret is the `token` query parameter. Its events
 * carry no id: the same body twice is the same event. Its `date` values can
 * be malformed ('2023-48-13 06:48:51'): the event is still accepted, the raw
 * value kept (vendor_time_raw), and its time falls back to the received time.
 */
export const ucontact: SourceAdapter = {
  name: 'ucontact',
  title: 'uContact event notifications',
  keptHeaders: ['content-type', 'user-agent'],
  enabled: (config) => config.UCONTACT_SECRET !== undefined,
  verify(request, config) {
    const secret = config.UCONTACT_SECRET;
    if (secret === undefined) return { ok: false, reason: 'UCONTACT_SECRET is not configured' };
    return safeEqual(request.query.get('token'), secret)
      ? { ok: true }
      : { ok: false, reason: 'missing or wrong token query parameter' };
  },
  identify(request, config) {
    const body = request.json;
    return {
      eventType: stringField(body.event) ?? 'Unknown',
      dedupeKey: bodyHashKey(request.rawBody),
      callKey: stringField(body.guid),
      vendorTime: parseVendorTime(body.date, config.UCONTACT_TIMEZONE) ?? request.receivedAt,
      vendorTimeRaw: stringField(body.date),
    };
  },
};
