import { describe, expect, it } from 'vitest';
import { OUT_OF_RANGE_MESSAGE, TIME_BOUND_HELP, TOO_FAR_BACK_MESSAGE, readTimeBound, timeBoundProblem } from './time-bounds';

const parseTimeBound = (text: string, now: Date) => {
  const bound = readTimeBound(text, now);
  return bound.ok ? bound.at : undefined;
};

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
    expect(timeBoundProblem(text)).toBeDefined();
  });

  it.each([
    ['999999w', TOO_FAR_BACK_MESSAGE],
    ['3651d', TOO_FAR_BACK_MESSAGE],
    ['999999999s', TOO_FAR_BACK_MESSAGE],
    ['0000-01-01', OUT_OF_RANGE_MESSAGE],
    ['1969-12-31', OUT_OF_RANGE_MESSAGE],
    ['0001-01-01T00:00:00Z', OUT_OF_RANGE_MESSAGE],
    ['9999-12-31T23:59:59-05:00', OUT_OF_RANGE_MESSAGE],
    ['2025-02-30', TIME_BOUND_HELP],
  ])('names what is wrong with %j', (text, problem) => {
    expect(readTimeBound(text, now)).toEqual({ ok: false, problem });
    expect(timeBoundProblem(text)).toBe(problem);
  });

  it('accepts the edges of the range', () => {
    expect(parseTimeBound('3650d', now)?.toISOString()).toBe('2015-11-24T12:00:00.000Z');
    expect(parseTimeBound('1970-01-01', now)?.toISOString()).toBe('1970-01-01T00:00:00.000Z');
    expect(parseTimeBound('9999-12-31', now)?.toISOString()).toBe('9999-12-31T00:00:00.000Z');
  });
});
