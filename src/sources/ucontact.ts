import { bodyHashKey, parseVendorTime, stringField } from './common';
import { safeEqual } from '../core/secrets';
import type { SourceAdapter } from './types';

/** Beyond this distance from its receipt, a date whose month slot repeats its minutes is the misplaced-month bug. */
export const MISPLACED_MONTH_MIN_DISTANCE_MS = 7 * 24 * 60 * 60 * 1000;

const MONTH_AND_MINUTE_SLOTS = /^\s*\d{4}-(\d{2})-\d{2}[ T]\d{2}:(\d{2})/;

/**
 * The time of a uContact event. uContact writes the minutes into the month
 * slot (seed 002: '2023-48-13 06:48:51', '2023-52-13 04:52:57'; the pattern
 * looks like 'yyyy-mm-dd' where 'MM' was meant). Above 12 the date does not
 * parse and falls back by itself; at minutes 01-12 it parses as a real but
 * wrong month ('2023-05-13 06:05:00' written in September), which would
 * reach the CRM as the call's time. Rule: a date is that bug when its month
 * slot equals its minutes AND it is more than 7 days from when we received it.
 *  - The equality is the bug's signature. Alone it would also discard one
 *    genuine date in sixty (06:06 in June, if a uContact version writes
 *    dates correctly), and the date the bug writes when the minutes happen to
 *    equal the current month, which is right.
 *  - The distance tells those apart: a misplaced month is at least 28 days
 *    off (same year and day, another month), while uContact posts as the
 *    event happens and never retries, so a genuine date is seconds from its
 *    receipt, or hours when UCONTACT_TIMEZONE is wrong. Seven days leaves
 *    room on both sides.
 *  - Distance alone is not the rule: a genuinely old date (a body posted
 *    again by hand, or identified later for a mapping preview) stays right.
 * A malformed date falls back to the received time; the raw value is kept.
 */
export function ucontactTime(raw: unknown, zone: string, receivedAt: Date): Date {
  const parsed = parseVendorTime(raw, zone);
  if (parsed === null) return receivedAt;
  const slots = typeof raw === 'string' ? MONTH_AND_MINUTE_SLOTS.exec(raw) : null;
  const monthSlotIsMinutes = slots !== null && slots[1] === slots[2];
  const farFromReceipt = Math.abs(parsed.getTime() - receivedAt.getTime()) > MISPLACED_MONTH_MIN_DISTANCE_MS;
  return monthSlotIsMinutes && farFromReceipt ? receivedAt : parsed;
}

/**
 * uContact event notifications (seed 002). uContact has no webhook auth and
 * only stores a URL, so the secret is the `token` query parameter. Its events
 * carry no id: the same body twice is the same event. Its `date` values can
 * be malformed (see ucontactTime): the event is still accepted, the raw
 * value kept (vendor_time_raw), and its time falls back to the received time.
 */
export const ucontact: SourceAdapter = {
  name: 'ucontact',
  timeZone: { variable: 'UCONTACT_TIMEZONE', name: 'ucontactTimezone' },
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
      vendorTime: ucontactTime(body.date, config.UCONTACT_TIMEZONE, request.receivedAt),
      vendorTimeRaw: stringField(body.date),
    };
  },
};
