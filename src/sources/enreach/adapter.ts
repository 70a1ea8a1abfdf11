import { bodyHashKey, parseVendorTime, stringField } from '../adapter-helpers';
import { matchesConfiguredSecret } from '../../core/secrets';
import type { SourceAdapter } from '../types';
import { enreachSettings } from './settings';

/** Events about a callback request rather than a call: their key is the request. */
const CALLBACK_EVENTS = new Set(['CallbackChanged']);

/**
 * Enreach (formerly Benemen) webhooks (seed 001). The configured Secret comes
 * back in X-Benemen-Token; `Id` is the event id; zone-less Timestamps are UTC.
 * See NOTES.md.
 */
export const enreach: SourceAdapter = {
  name: 'enreach',
  title: 'Enreach (Benemen) webhooks',
  keptHeaders: enreachSettings.keptHeaders,
  enabled: (config) => config.ENREACH_SECRET !== undefined,
  verify(request, config) {
    const secret = config.ENREACH_SECRET;
    if (secret === undefined) return { ok: false, reason: 'ENREACH_SECRET is not configured' };
    return matchesConfiguredSecret(request.headers['x-benemen-token'], secret)
      ? { ok: true }
      : { ok: false, reason: 'missing or wrong X-Benemen-Token header' };
  },
  identify(request) {
    const body = request.json;
    const eventType = stringField(request.headers['x-benemen-event']) ?? stringField(body.EventType) ?? 'Unknown';
    const callKey = CALLBACK_EVENTS.has(eventType)
      ? (stringField(body.CallBackId) ?? stringField(body.CallId))
      : stringField(body.CallId);
    return {
      eventType,
      dedupeKey: stringField(body.Id) ?? bodyHashKey(request.rawBody),
      callKey,
      vendorTime: parseVendorTime(body.Timestamp, 'UTC'),
      vendorTimeRaw: stringField(body.Timestamp),
    };
  },
  // Enreach names the type in X-Benemen-Event.
  syntheticDelivery: (eventType) => (eventType === undefined ? {} : { headers: { 'x-benemen-event': eventType } }),
};
