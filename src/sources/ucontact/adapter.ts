import { bodyHashKey, parseVendorTime, stringField } from '../adapter-helpers';
import { matchesConfiguredSecret } from '../../core/secrets';
import type { SourceAdapter } from '../types';
import { ucontactSettings } from './settings';

/** Beyond this distance from its receipt, a date whose month slot repeats its minutes is the misplaced-month bug. */
export const MISPLACED_MONTH_MIN_DISTANCE_MS = 7 * 24 * 60 * 60 * 1000;

const MONTH_AND_MINUTE_SLOTS = /^\s*\d{4}-(\d{2})-\d{2}[ T]\d{2}:(\d{2})/;

/**
 * The time of a uContact event. uContact can write the minutes into the
 * month slot; such a date (month slot = minutes, more than 7 days from its
 * receipt) or a malformed one falls back to the received time. Why this
 * rule and not another: NOTES.md, "Dates with the month misplaced".
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
 * uContact event notifications (seed 002). The secret is the `token` query
 * parameter (uContact only stores a URL); events carry no id, so the same
 * body twice is the same event. See NOTES.md.
 */
export const ucontact: SourceAdapter = {
  name: 'ucontact',
  timeZone: ucontactSettings.timeZone,
  title: 'uContact event notifications',
  keptHeaders: ucontactSettings.keptHeaders,
  enabled: (config) => config.UCONTACT_SECRET !== undefined,
  verify(request, config) {
    const secret = config.UCONTACT_SECRET;
    if (secret === undefined) return { ok: false, reason: 'UCONTACT_SECRET is not configured' };
    return matchesConfiguredSecret(request.query.get('token'), secret)
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
