import { describe, expect, it } from 'vitest';
import { parseRetryAfter, transportError, worstError, withoutQueries } from './classify-errors';
import { SyncError } from '../../core/errors';

describe('CRM error helpers', () => {
  it('reads Retry-After in seconds or as an HTTP date', () => {
    const now = Date.UTC(2025, 0, 15, 12, 0, 0);
    expect(parseRetryAfter('30', now)).toBe(now + 30_000);
    expect(parseRetryAfter('Wed, 15 Jan 2025 12:01:00 GMT', now)).toBe(now + 60_000);
    expect(parseRetryAfter('Wed, 15 Jan 2025 11:00:00 GMT', now)).toBe(now);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('keeps phone numbers and emails in request URLs out of error messages', () => {
    const err = Object.assign(
      new Error('request to https://acme.my.salesforce.com/services/data/v62.0/search?q=FIND%20%7B%225551234567%22%7D failed, reason: connect ECONNREFUSED'),
      { code: 'ECONNREFUSED' },
    );
    const error = transportError(err, 'Salesforce');
    expect(error).toMatchObject({ kind: 'transient', crmCode: 'ECONNREFUSED' });
    expect(error.message).toBe(
      'Salesforce request failed: request to https://acme.my.salesforce.com/services/data/v62.0/search?… failed, reason: connect ECONNREFUSED',
    );
    expect(error.cause).toBeUndefined();
    expect(withoutQueries('GET https://api.hubapi.com/crm/v3/owners?email=a%40b.c timed out')).toBe('GET https://api.hubapi.com/crm/v3/owners?… timed out');
  });

  it('lets a permanent rejection speak for a call whose records failed differently', () => {
    const transient = new SyncError('transient', 'locked');
    const permanent = new SyncError('permanent', 'bad value');
    expect(worstError([transient, permanent])).toBe(permanent);
    expect(worstError([])).toBeUndefined();
  });
});
