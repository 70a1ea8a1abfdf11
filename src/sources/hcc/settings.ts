import { ianaZone, optionalSecret, optionalString } from '../../env-values';
import { defineSourceSettings } from '../source-settings';

export const hccSettings = defineSourceSettings({
  env: {
    HCC_SECRET: optionalSecret,
    HCC_BASIC_USER: optionalString,
    HCC_BASIC_PASSWORD: optionalSecret,
    HCC_TIMEZONE: ianaZone('America/Chicago'),
  },
  envRules: [
    {
      reads: ['HCC_BASIC_USER', 'HCC_BASIC_PASSWORD'],
      check: (env) =>
        (env.HCC_BASIC_USER === undefined) !== (env.HCC_BASIC_PASSWORD === undefined)
          ? {
              variable: env.HCC_BASIC_USER === undefined ? 'HCC_BASIC_USER' : 'HCC_BASIC_PASSWORD',
              message: 'HCC_BASIC_USER and HCC_BASIC_PASSWORD must be set together',
            }
          : null,
    },
  ],
  keptHeaders: ['content-type', 'user-agent'],
  redactedHeaders: ['x-api-key', 'authorization'],
  timeZone: { variable: 'HCC_TIMEZONE', name: 'hccTimezone' },
});
