import { bodyHashKey, canonicalJson, parseEpochMillis, stringField } from './common';
import { hmacSha256Hex, safeEqual, sha256Hex } from '../core/secrets';
import type { SourceAdapter } from './types';

/** How far X-WebExCC-Timestamp may be from our clock, either way. */
export const WEBEX_TIMESTAMP_TOLERANCE_MS = 5 * 60 * 1000;

/**
 * Webex Contact Center subscription webhooks (CloudEvents envelope; seed 004).
 * X-WebexCC-Signature is the hex HMAC-SHA256 of the raw body. v2 deliveries
 * add X-WebExCC-Timestamp, which must equal the body's comciscotimestamp and
 * be fresh, so a captured delivery cannot be replayed later.
 *
 * Dedupe: what the envelope `id` identifies, per seed 004. The post's tables
 * show one "WebhookID" on several rows: on a task:connect and the
 * agent:state_change of the same moment, but also on a task:parked 16 s
 * later and on two agent:state_change rows with different times and
 * destinations (WebhookID_02, _04, _08 in the RONA table). So the id names
 * a step of the task (one offer to an agent, say), not one event: neither
 * the id alone nor (type, id) tells those events apart, and either would
 * drop a distinct event as a "duplicate". The key is therefore
 * (type, id, hash of `data`): distinct events differ in type or in their
 * data (its createdTime at least); a re-delivery repeats all three.
 * `data` is hashed rather than the whole body because the envelope's
 * comciscotimestamp is the delivery's time, not the event's: a v2 delivery
 * must repeat it in X-WebExCC-Timestamp within 5 minutes of now, so a retry
 * sent later carries a new one. Keys are sorted before hashing, so a body
 * serialised again in another key order still matches.
 */
export const webexCc: SourceAdapter = {
  name: 'webex-cc',
  title: 'Webex Contact Center webhooks',
  keptHeaders: ['content-type', 'user-agent', 'x-webexcc-timestamp', 'x-webexcc-webhook-version'],
  enabled: (config) => config.WEBEX_CC_SECRET !== undefined,
  verify(request, config, now) {
    const secret = config.WEBEX_CC_SECRET;
    if (secret === undefined) return { ok: false, reason: 'WEBEX_CC_SECRET is not configured' };
    const signature = request.headers['x-webexcc-signature']?.trim().toLowerCase();
    if (!safeEqual(signature, hmacSha256Hex(secret, request.rawBody))) {
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
