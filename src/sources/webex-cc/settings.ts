import { optionalSecret } from '../../env-values';
import { defineSourceSettings } from '../source-settings';

export const webexCcSettings = defineSourceSettings({
  env: { WEBEX_CC_SECRET: optionalSecret },
  keptHeaders: ['content-type', 'user-agent', 'x-webexcc-timestamp', 'x-webexcc-webhook-version'],
  redactedHeaders: ['x-webexcc-signature'],
});
