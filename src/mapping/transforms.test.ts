import { describe, expect, it } from 'vitest';
import { convertDuration, looseEquals, toEmail, truncate } from './transforms';
import { toPhone } from '../core/phone';
import { isoFromMs, parseTextTime, toDate, toEpochMs } from '../core/time';

const iso = (v: unknown, f: Parameters<typeof toEpochMs>[1], zone = 'UTC'): string | null => {
  const ms = toEpochMs(v, f, zone);
  return ms === null ? null : isoFromMs(ms);
};

describe('times', () => {
  it('reads epoch seconds, as a number or digits', () => {
    expect(iso(1700000000, 'epoch-s')).toBe('2023-11-14T22:13:20.000Z');
    expect(iso('1700000000', 'epoch-s')).toBe('2023-11-14T22:13:20.000Z');
    expect(iso(1700000000.5, 'epoch-s')).toBe('2023-11-14T22:13:20.500Z');
  });

  it('reads epoch milliseconds (Webex createdTime)', () => {
    expect(iso(1665773882000, 'epoch-ms')).toBe('2022-10-14T18:58:02.000Z');
    expect(iso('1665773882000', 'epoch-ms')).toBe('2022-10-14T18:58:02.000Z');
  });

  it("reads Genesys 'epoch.millis' strings as text, so no millisecond is lost", () => {
    // The double nearest 1700000125.251 is 1700000125.2509999...: arithmetic on it can lose the
    // millisecond (here, taking the fraction). Reading the two halves as text cannot.
    expect(Math.floor((parseFloat('1700000125.251') % 1) * 1000)).toBe(250);
    expect(iso('1700000125.251', 'epoch.millis')).toBe('2023-11-14T22:15:25.251Z');
    expect(iso('1700000125.25', 'epoch.millis')).toBe('2023-11-14T22:15:25.250Z');
    expect(iso('1700000125', 'epoch.millis')).toBe('2023-11-14T22:15:25.000Z');
    expect(iso('1700000125.2519', 'epoch.millis')).toBe('2023-11-14T22:15:25.251Z');
  });

  it('reads zone-less local times in the given zone, across daylight saving', () => {
    expect(iso('2023-06-27 13:22:18', 'local', 'America/Chicago')).toBe('2023-06-27T18:22:18.000Z');
    expect(iso('2023-01-27 13:22:18', 'local', 'America/Chicago')).toBe('2023-01-27T19:22:18.000Z');
    expect(iso('2018-01-01T08:01:23.45', 'iso')).toBe('2018-01-01T08:01:23.450Z');
  });

  it('honours an offset written in the value', () => {
    expect(iso('2023-06-27T13:22:18+02:00', 'iso')).toBe('2023-06-27T11:22:18.000Z');
    expect(iso('2023-06-27T13:22:18Z', 'local', 'America/Chicago')).toBe('2023-06-27T13:22:18.000Z');
  });

  it('gives null for malformed or missing times instead of guessing', () => {
    expect(iso('2023-48-13 06:48:51', 'local', 'UTC')).toBeNull();
    expect(iso('2023-02-31 10:00:00', 'local', 'UTC')).toBeNull();
    expect(iso('2023-02-31 10:00:00', 'local', 'America/Chicago')).toBeNull();
    expect(iso('2023-06-27 24:00:00', 'iso')).toBeNull();
    expect(iso('not a time', 'iso')).toBeNull();
    expect(iso('', 'iso')).toBeNull();
    expect(iso(null, 'epoch-ms')).toBeNull();
    expect(iso('12.5.6', 'epoch.millis')).toBeNull();
    expect(iso('99999999999999999', 'epoch-ms')).toBeNull();
  });

  it('accepts a Date as it is', () => {
    expect(iso(new Date('2024-03-01T00:00:00Z'), 'iso')).toBe('2024-03-01T00:00:00.000Z');
  });

  it('gives the calendar date in a zone', () => {
    expect(toDate('2023-06-28T03:30:00.000Z', 'UTC')).toBe('2023-06-28');
    expect(toDate('2023-06-28T03:30:00.000Z', 'America/Chicago')).toBe('2023-06-27');
    expect(parseTextTime('2023-06-27 13:22', 'UTC')).toBe(Date.UTC(2023, 5, 27, 13, 22));
  });
});

describe('durations', () => {
  it('converts seconds and milliseconds to whole units', () => {
    expect(convertDuration(185, 's', 's')).toBe(185);
    expect(convertDuration('12', 's', 's')).toBe(12);
    expect(convertDuration(1500, 'ms', 's')).toBe(2);
    expect(convertDuration(12, 's', 'ms')).toBe(12000);
    expect(convertDuration(-1, 's', 's')).toBeNull();
    expect(convertDuration('n/a', 's', 's')).toBeNull();
  });
});

describe('phone numbers', () => {
  it('formats valid numbers as E.164 with the default region', () => {
    expect(toPhone('+1 (312) 555-0147', 'US')).toBe('+13125550147');
    expect(toPhone('9725550138', 'US')).toBe('+19725550138');
    expect(toPhone(9725550138, 'US')).toBe('+19725550138');
    expect(toPhone('0501234567', 'FI')).toBe('+358501234567');
    expect(toPhone('099123456', 'UY')).toBe('+59899123456');
  });

  it('keeps the raw value when the number is not valid for the region', () => {
    expect(toPhone('0501234567', 'US')).toBe('0501234567');
    expect(toPhone(' 1234 ', 'US')).toBe('1234');
    expect(toPhone('', 'US')).toBeNull();
  });
});

describe('other conversions', () => {
  it('compares numbers as numbers and text as text', () => {
    expect(looseEquals(5, '5')).toBe(true);
    expect(looseEquals('5.0', 5)).toBe(true);
    expect(looseEquals('Agent', 'agent')).toBe(false);
    expect(looseEquals('Agent', 'agent', true)).toBe(true);
    expect(looseEquals(null, null)).toBe(true);
    expect(looseEquals(null, 0)).toBe(false);
  });

  it('keeps emails and drops what is not one', () => {
    expect(toEmail(' jane.doe@example.com ')).toBe('jane.doe@example.com');
    expect(toEmail('4021')).toBeNull();
  });

  it('truncates without splitting a character', () => {
    expect(truncate('abc😀def', 4)).toBe('abc😀');
    expect(truncate('abc', 5)).toBe('abc');
  });
});
