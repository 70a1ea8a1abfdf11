import { optionalSecret } from '../../env-values';
import { defineSourceSettings } from '../source-settings';

export const genesysOcsSettings = defineSourceSettings({
  env: { GENESYS_OCS_SECRET: optionalSecret },
  keptHeaders: ['content-type', 'user-agent', 'etag'],
  redactedHeaders: ['x-api-key'],
});
