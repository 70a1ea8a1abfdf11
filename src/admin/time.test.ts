import { describe, expect, it } from 'vitest';
import { isTimeBound, parseTimeBound } from './time';

const now = new Date('2025-11-21T12:00:00.000Z');

describe('admin time bounds', () => {
  it.each([
    ['30m', '2025-11-21T11:30:00.000Z'],
    ['2h', '2025-11-21T10:00:00.000Z'],
    ['7d', '2025-11-14T12:00:00.000Z'],
    ['1w', '2025-11-14T12:00:00.000Z'],
    ['90s', '2025-11-21T11:58:30.000Z'],
    ['2H', '2025-11-21T10:00:00.000Z'],
    ['2025-11-21T08:00:00Z', '2025-11-21T08:00:00.000Z'],
    ['2025-11-21T08:00:00.250+02:00', '2025-11-21T06:00:00.250Z'],
    ['2025-11-21T08:00-0500', '2025-11-21T13:00:00.000Z'],
    ['2025-11-20', '2025-11-20T00:00:00.000Z'],
  ])('reads %s', (text, iso) => {
    expect(parseTimeBound(text, now)?.toISOString()).toBe(iso);
  });

  it.each(['yesterday', '2h ago', '-2h', '2025-11-21T08:00:00', '2025-02-30', '2025-13-01T00:00Z', '', '2', '5y'])('refuses %j', (text) => {
    expect(parseTimeBound(text, now)).toBeUndefined();
    expect(isTimeBound(text)).toBe(false);
  });
});
