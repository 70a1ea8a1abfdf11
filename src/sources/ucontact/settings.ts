import { ianaZone, optionalSecret } from '../../env-values';
import { defineSourceSettings } from '../source-settings';

export const ucontactSettings = defineSourceSettings({
  env: {
    UCONTACT_SECRET: optionalSecret,
    /** uContact dates carry no zone either; read them in this IANA zone. */
    UCONTACT_TIMEZONE: ianaZone('America/Montevideo'),
  },
  keptHeaders: ['content-type', 'user-agent'],
  // The credential travels in the URL (?token=), never in a header.
  redactedHeaders: [],
  timeZone: { variable: 'UCONTACT_TIMEZONE', name: 'ucontactTimezone' },
});
