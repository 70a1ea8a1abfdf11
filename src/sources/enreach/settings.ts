import { optionalSecret } from '../../env-values';
import { defineSourceSettings } from '../source-settings';

export const enreachSettings = defineSourceSettings({
  env: { ENREACH_SECRET: optionalSecret },
  keptHeaders: ['content-type', 'user-agent', 'x-benemen-event'],
  redactedHeaders: ['x-benemen-token'],
});
