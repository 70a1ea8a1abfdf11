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

  it('lists every bad variable at once', () => {
    let error: unknown;
    try {
      parseConfig({
        PORT: 'eighty',
        DATABASE_URL: 'mysql://x',
        HCC_TIMEZONE: 'Mars/Olympus',
        HCC_BASIC_USER: 'only-user',
        CRM_TARGET: 'salesforce',
        ADMIN_TOKEN: 'short',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'PORT: Invalid input: expected number, received NaN',
      'DATABASE_URL: must start with postgres:// or postgresql://',
      'HCC_TIMEZONE: must be an IANA time zone such as America/Chicago',
      'ADMIN_TOKEN: must be at least 16 characters',
    ]);
  });

  it('checks cross-variable rules once the single values are valid', () => {
    expect(() => parseConfig({ HCC_BASIC_USER: 'only-user' })).toThrow(
      'HCC_BASIC_PASSWORD: HCC_BASIC_USER and HCC_BASIC_PASSWORD must be set together',
    );
    expect(() => parseConfig({ CRM_TARGET: 'hubspot' })).toThrow('HUBSPOT_ACCESS_TOKEN: required when CRM_TARGET=hubspot');
    expect(() => parseConfig({ CRM_TARGET: 'salesforce' })).toThrow(/SALESFORCE_CLIENT_ID: CRM_TARGET=salesforce needs one way to authenticate/);
  });
});
