import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config';

describe('parseConfig', () => {
  it('runs with zero configuration: embedded database, dry-run target, port 3000', () => {
    const config = parseConfig({});
    expect(config).toMatchObject({
      PORT: 3000,
      DATA_DIR: './data',
      crmTarget: 'dry-run',
      MAX_BODY_BYTES: 1048576,
      HCC_TIMEZONE: 'UTC',
      SALESFORCE_API_VERSION: '62.0',
      SYNC_MAX_ATTEMPTS: 10,
      RETENTION_DAYS: 30,
    });
    expect(config.DATABASE_URL).toBeUndefined();
    expect(config.GENESYS_OCS_SECRET).toBeUndefined();
  });

  it('treats an empty secret as unset', () => {
    expect(parseConfig({ ENREACH_SECRET: '   ' }).ENREACH_SECRET).toBeUndefined();
  });

  it('treats an empty or blank number, switch or choice as unset, as the README says', () => {
    const config = parseConfig({
      PORT: '',
      DATABASE_POOL_SIZE: ' ',
      SYNC_BATCH_WAIT_MS: '',
      MAPPINGS_WATCH: '',
      HUBSPOT_ID_PROPERTY_UNIQUE: '',
      CRM_TARGET: '',
      LOG_LEVEL: '',
      HCC_TIMEZONE: '',
      DATA_DIR: '',
    });
    expect(config).toMatchObject({
      PORT: 3000,
      DATABASE_POOL_SIZE: 10,
      SYNC_BATCH_WAIT_MS: 200,
      MAPPINGS_WATCH: true,
      HUBSPOT_ID_PROPERTY_UNIQUE: true,
      crmTarget: 'dry-run',
      LOG_LEVEL: 'info',
      HCC_TIMEZONE: 'UTC',
      DATA_DIR: './data',
    });
    expect(config.CRM_TARGET).toBeUndefined();
  });

  it('keeps an empty HUBSPOT_ID_PROPERTY: it means "no id property"', () => {
    expect(parseConfig({ HUBSPOT_ID_PROPERTY: '' }).HUBSPOT_ID_PROPERTY).toBe('');
    expect(parseConfig({}).HUBSPOT_ID_PROPERTY).toBe('call_sync_id');
  });

  it('still refuses a number that is not one, and port 0 when written', () => {
    expect(problemsOf({ PORT: 'abc' })).toEqual(['PORT: Invalid input: expected number, received NaN']);
    expect(parseConfig({ PORT: '0' }).PORT).toBe(0);
    expect(parseConfig({ PORT: ' 8080 ' }).PORT).toBe(8080);
  });

  it('lists every bad variable at once, cross-variable rules included', () => {
    expect(
      problemsOf({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        HCC_TIMEZONE: 'Mars/Olympus',
        HCC_BASIC_USER: 'only-user',
        CRM_TARGET: 'salesforce',
        ADMIN_TOKEN: 'short',
        MAX_BODY_BYTES: '10',
        SYNC_BACKOFF_BASE_MS: '90000',
        SYNC_BACKOFF_MAX_MS: '60000',
      }),
    ).toEqual([
      'PORT: Invalid input: expected number, received NaN',
      'DATABASE_URL: must start with postgres:// or postgresql://',
      'MAX_BODY_BYTES: Too small: expected number to be >=1024',
      'HCC_TIMEZONE: must be an IANA time zone such as America/Chicago',
      'ADMIN_TOKEN: must be at least 16 characters',
      'HCC_BASIC_PASSWORD: HCC_BASIC_USER and HCC_BASIC_PASSWORD must be set together',
      'SALESFORCE_CLIENT_ID: CRM_TARGET=salesforce needs one way to authenticate: SALESFORCE_INSTANCE_URL + SALESFORCE_ACCESS_TOKEN, ' +
        'SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET (+ SALESFORCE_REFRESH_TOKEN), ' +
        'or SALESFORCE_CLIENT_ID + SALESFORCE_USERNAME + SALESFORCE_PRIVATE_KEY (JWT)',
      'SYNC_BACKOFF_BASE_MS: must not exceed SYNC_BACKOFF_MAX_MS',
    ]);
  });

  it('skips a cross-variable rule whose own inputs are invalid, rather than guessing', () => {
    // SYNC_BACKOFF_MAX_MS is unreadable: comparing the base with it would be noise.
    expect(problemsOf({ SYNC_BACKOFF_BASE_MS: '90000', SYNC_BACKOFF_MAX_MS: 'soon', CRM_TARGET: 'hubspot' })).toEqual([
      'SYNC_BACKOFF_MAX_MS: Invalid input: expected number, received NaN',
      'HUBSPOT_ACCESS_TOKEN: required when CRM_TARGET=hubspot',
    ]);
    expect(problemsOf({ CRM_TARGET: 'zoho', HUBSPOT_ACCESS_TOKEN: undefined })).toEqual([
      'CRM_TARGET: Invalid option: expected one of "salesforce"|"hubspot"|"dry-run"',
    ]);
  });

  it('checks each cross-variable rule on its own', () => {
    expect(problemsOf({ HCC_BASIC_USER: 'only-user' })).toEqual([
      'HCC_BASIC_PASSWORD: HCC_BASIC_USER and HCC_BASIC_PASSWORD must be set together',
    ]);
    expect(problemsOf({ HCC_BASIC_PASSWORD: 'only-password' })).toEqual([
      'HCC_BASIC_USER: HCC_BASIC_USER and HCC_BASIC_PASSWORD must be set together',
    ]);
    expect(problemsOf({ CRM_TARGET: 'hubspot' })).toEqual(['HUBSPOT_ACCESS_TOKEN: required when CRM_TARGET=hubspot']);
    expect(problemsOf({ CRM_TARGET: 'salesforce' })).toEqual([expect.stringMatching(/^SALESFORCE_CLIENT_ID: CRM_TARGET=salesforce needs one way/)]);
    expect(problemsOf({ CRM_TARGET: 'salesforce', SALESFORCE_CLIENT_ID: 'id', SALESFORCE_CLIENT_SECRET: 's' })).toEqual([]);
  });
});

/** The problems parseConfig reports, in order; [] when the environment is valid. */
function problemsOf(env: Record<string, string | undefined>): string[] {
  try {
    parseConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}
