import { bodyHashKey, canonicalJson, parseEpochMillis, stringField } from '../adapter-helpers';
import { hmacSha256Hex, matchesConfiguredSecret, sha256Hex } from '../../core/secrets';
import type { SourceAdapter } from '../types';
import { webexCcSettings } from './settings';

/** How far X-WebExCC-Timestamp may be from our clock, either way. */
export const WEBEX_TIMESTAMP_TOLERANCE_MS = 5 * 60 * 1000;

/**
 * Webex Contact Center subscription webhooks (CloudEvents envelope; seed 004).
 * X-WebexCC-Signature is the hex HMAC-SHA256 of the raw body; a v2 delivery's
 * X-WebExCC-Timestamp must equal the body's comciscotimestamp and be fresh.
 * The dedupe key is (type, envelope id, hash of `data`): the envelope id is
 * not unique per event. Why: NOTES.md.
 */
export const webexCc: SourceAdapter = {
  name: 'webex-cc',
  title: 'Webex Contact Center webhooks',
  keptHeaders: webexCcSettings.keptHeaders,
  enabled: (config) => config.WEBEX_CC_SECRET !== undefined,
  verify(request, config, now) {
    const secret = config.WEBEX_CC_SECRET;
    if (secret === undefined) return { ok: false, reason: 'WEBEX_CC_SECRET is not configured' };
    const signature = request.headers['x-webexcc-signature']?.trim().toLowerCase();
    if (!matchesConfiguredSecret(signature, hmacSha256Hex(secret, request.rawBody))) {
      return { ok: false, reason: 'missing or wrong X-WebexCC-Signature' };
    }
    const headerTimestamp = request.headers['x-webexcc-timestamp'];
    if (headerTimestamp !== undefined) {
      const sent = Number(headerTimestamp.trim());
      if (!Number.isFinite(sent)) return { ok: false, reason: 'X-WebExCC-Timestamp is not epoch milliseconds' };
      const bodyTimestamp = request.json ? Number(request.json.comciscotimestamp) : NaN;
      if (request.json !== null && bodyTimestamp !== sent) {
        return { ok: false, reason: 'X-WebExCC-Timestamp does not match the body comciscotimestamp' };
      }
      if (Math.abs(now.getTime() - sent) > WEBEX_TIMESTAMP_TOLERANCE_MS) {
        return { ok: false, reason: 'X-WebExCC-Timestamp is more than 5 minutes from now' };
      }
    }
    return { ok: true };
  },
  identify(request) {
    const body = request.json;
    const data = typeof body.data === 'object' && body.data !== null ? (body.data as Record<string, unknown>) : {};
    const type = stringField(body.type) ?? 'unknown';
    const id = stringField(body.id);
    // `data` rather than the whole body: comciscotimestamp is the delivery's time, and a retry carries a new one.
    const dedupeKey =
      body.data === undefined ? bodyHashKey(request.rawBody) : `${type}:${id ?? '-'}:${sha256Hex(canonicalJson(body.data))}`;
    return {
      eventType: type,
      dedupeKey,
      callKey: stringField(data.taskId),
      vendorTime: parseEpochMillis(data.createdTime),
      vendorTimeRaw: stringField(data.createdTime),
    };
  },
};
