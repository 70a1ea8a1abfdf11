import { bodyHashKey, parseEpochDotMillis, stringField } from '../adapter-helpers';
import { matchesConfiguredSecret } from '../../core/secrets';
import type { SourceAdapter } from '../types';
import { genesysOcsSettings } from './settings';

/**
 * Genesys OCS contact-processed notifications (seed 000). The shared secret
 * travels in X-Api-Key; GSW_MESSAGE_GUID (or ETag) is the event id. See NOTES.md.
 */
export const genesysOcs: SourceAdapter = {
  name: 'genesys-ocs',
  title: 'Genesys OCS contact-processed notifications',
  keptHeaders: genesysOcsSettings.keptHeaders,
  enabled: (config) => config.GENESYS_OCS_SECRET !== undefined,
  verify(request, config) {
    const secret = config.GENESYS_OCS_SECRET;
    if (secret === undefined) return { ok: false, reason: 'GENESYS_OCS_SECRET is not configured' };
    return matchesConfiguredSecret(request.headers['x-api-key'], secret)
      ? { ok: true }
      : { ok: false, reason: 'missing or wrong X-Api-Key header' };
  },
  identify(request) {
    const body = request.json;
    const messageGuid = stringField(body.GSW_MESSAGE_GUID) ?? stringField(request.headers.etag?.replace(/^W\//, '').replace(/"/g, ''));
    const timestampRaw = stringField(body.GSW_TIMESTAMP);
    return {
      eventType: stringField(body.GSW_MESSAGE) ?? 'ContactProcessed',
      dedupeKey: messageGuid ?? bodyHashKey(request.rawBody),
      callKey: stringField(body.GSW_CALL_ATTEMPT_GUID),
      vendorTime: parseEpochDotMillis(body.GSW_TIMESTAMP),
      vendorTimeRaw: timestampRaw,
    };
  },
};
