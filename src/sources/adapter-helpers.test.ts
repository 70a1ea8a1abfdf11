import { describe, expect, it } from 'vitest';
import { basicCredentials, canonicalJson, parseEpochDotMillis, parseEpochMillis, parseVendorTime } from './adapter-helpers';

describe('parseEpochDotMillis (Genesys OCS times)', () => {
  it.each([
    ['1700000125.250', '2023-11-14T22:15:25.250Z'],
    ['1700000125.251', '2023-11-14T22:15:25.251Z'],
    ['1700000125.5', '2023-11-14T22:15:25.500Z'],
    ['1700000125', '2023-11-14T22:15:25.000Z'],
    ['1700000125.2519', '2023-11-14T22:15:25.251Z'],
  ])('%s is %s, exact to the millisecond', (raw, iso) => {
    expect(parseEpochDotMillis(raw)?.toISOString()).toBe(iso);
  });

  it('truncates sub-millisecond digits instead of rounding into the next second', () => {
    // Through a float and Math.round this would be 1700000126000: a different second.
    expect(Math.round(Number('1700000125.9999') * 1000)).toBe(1700000126000);
    expect(parseEpochDotMillis('1700000125.9999')?.getTime()).toBe(1700000125999);
  });

  it.each(['', 'abc', '17000.00.1', '-1', null, undefined, {}])('refuses %j', (raw) => {
    expect(parseEpochDotMillis(raw)).toBeNull();
  });
});

describe('parseEpochMillis (Webex createdTime)', () => {
  it('reads numbers and digit strings', () => {
    expect(parseEpochMillis(1665781611000)?.toISOString()).toBe('2022-10-14T21:06:51.000Z');
    expect(parseEpochMillis('1665781611000')?.toISOString()).toBe('2022-10-14T21:06:51.000Z');
    expect(parseEpochMillis('soon')).toBeNull();
    expect(parseEpochMillis(0)).toBeNull();
  });
});

describe('parseVendorTime', () => {
  it('reads a zone-less time as UTC or in the zone given', () => {
    expect(parseVendorTime('2018-01-01T08:01:23.45', 'UTC')?.toISOString()).toBe('2018-01-01T08:01:23.450Z');
    expect(parseVendorTime('2023-06-27 13:22:18', 'America/Chicago')?.toISOString()).toBe('2023-06-27T18:22:18.000Z');
    expect(parseVendorTime('2023-01-27 13:22:18', 'America/Chicago')?.toISOString()).toBe('2023-01-27T19:22:18.000Z');
  });

  it('honours an explicit zone over the default', () => {
    expect(parseVendorTime('2018-01-01T08:01:23+02:00', 'America/Chicago')?.toISOString()).toBe('2018-01-01T06:01:23.000Z');
    expect(parseVendorTime('2018-01-01T08:01:23Z', 'Asia/Tokyo')?.toISOString()).toBe('2018-01-01T08:01:23.000Z');
  });

  it('reads .NET seven-digit fractions', () => {
    expect(parseVendorTime('2018-01-01T08:01:23.4567891', 'UTC')?.toISOString()).toBe('2018-01-01T08:01:23.456Z');
  });

  it.each(['2023-48-13 06:48:51', '2023-16-13 05:16:22', '2023-02-30 10:00:00', 'yesterday', ''])(
    'gives null for the malformed %j rather than a guess',
    (raw) => {
      expect(parseVendorTime(raw, 'UTC')).toBeNull();
    },
  );
});

describe('basicCredentials', () => {
  it('decodes user and password, keeping colons in the password', () => {
    const header = `Basic ${Buffer.from('hcc:pa:ss').toString('base64')}`;
    expect(basicCredentials(header)).toEqual({ user: 'hcc', password: 'pa:ss' });
    expect(basicCredentials('Bearer abc')).toBeNull();
    expect(basicCredentials(undefined)).toBeNull();
  });
});

describe('canonicalJson', () => {
  it('writes the same value the same way whatever the key order, at every level', () => {
    const a = { b: 1, a: { d: [1, { y: 2, x: null }], c: 'é' } };
    const b = { a: { c: 'é', d: [1, { x: null, y: 2 }] }, b: 1 };
    expect(canonicalJson(a)).toBe('{"a":{"c":"é","d":[1,{"x":null,"y":2}]},"b":1}');
    expect(canonicalJson(b)).toBe(canonicalJson(a));
  });

  it('keeps array order and tells values apart', () => {
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
    expect(canonicalJson({ a: '1' })).not.toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson(undefined)).toBe('null');
  });
});
