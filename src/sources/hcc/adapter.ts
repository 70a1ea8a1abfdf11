import { basicCredentials, parseVendorTime, stringField } from '../adapter-helpers';
import { matchesConfiguredSecret, sha256Hex } from '../../core/secrets';
import type { SourceAdapter } from '../types';
import { hccSettings } from './settings';

export const HCC_EVENTS = ['call-created', 'call-ended', 'call-saved', 'regulation-f-declined'] as const;

/**
 * Intelligent Contacts Hosted Contact Center webhooks (seed 003). Each event
 * has its own URL (the body does not name it); x-api-key or Basic auth; the
 * dedupe key is (event, call_id, body hash). See NOTES.md.
 */
export const hcc: SourceAdapter = {
  name: 'hcc',
  title: 'Intelligent Contacts HCC webhooks',
  pathEvents: HCC_EVENTS,
  timeZone: hccSettings.timeZone,
  keptHeaders: hccSettings.keptHeaders,
  enabled: (config) => config.HCC_SECRET !== undefined || config.HCC_BASIC_USER !== undefined,
  verify(request, config) {
    if (config.HCC_SECRET === undefined && config.HCC_BASIC_USER === undefined) {
      return { ok: false, reason: 'neither HCC_SECRET nor HCC_BASIC_USER is configured' };
    }
    // Every comparison runs whatever is configured, and the results are
    // combined only afterwards: the time taken says nothing about which
    // scheme is configured, nor whether the Basic user alone was right.
    const basic = basicCredentials(request.headers.authorization);
    const keyMatches = matchesConfiguredSecret(request.headers['x-api-key'], config.HCC_SECRET ?? '');
    const userMatches = matchesConfiguredSecret(basic?.user, config.HCC_BASIC_USER ?? '');
    const passwordMatches = matchesConfiguredSecret(basic?.password, config.HCC_BASIC_PASSWORD ?? '');
    const keyOk = config.HCC_SECRET !== undefined && keyMatches;
    const basicOk =
      config.HCC_BASIC_USER !== undefined && config.HCC_BASIC_PASSWORD !== undefined && userMatches && passwordMatches;
    return keyOk || basicOk ? { ok: true } : { ok: false, reason: 'missing or wrong x-api-key or Basic credentials' };
  },
  identify(request, config) {
    const body = request.json;
    const event = request.params.event ?? 'unknown';
    const callId = stringField(body.call_id);
    return {
      eventType: event,
      dedupeKey: `${event}:${callId ?? '-'}:${sha256Hex(request.rawBody)}`,
      callKey: callId,
      vendorTime: parseVendorTime(body.call_date, config.HCC_TIMEZONE),
      vendorTimeRaw: stringField(body.call_date),
    };
  },
  // HCC names the type only in the URL it posts to.
  syntheticDelivery: (eventType) => ({ params: { event: eventType ?? 'unknown' } }),
};
