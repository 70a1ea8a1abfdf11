import { DateTime } from 'luxon';
import { AppError } from '../core/errors';

/**
 * Time bounds for the admin's filters (since/until): an ISO 8601 time with a
 * zone, a plain date (midnight UTC), or a time relative to now such as
 * '30m', '2h', '7d' (meaning "that long ago").
 *
 * A zone-less date-time is refused rather than guessed: the admin may sit in
 * another zone than the server, and "since 08:00" off by hours replays the
 * wrong calls.
 *
 * Every accepted bound lies between 1970 and 9999: Postgres refuses years
 * outside what timestamptz can spell (year 0, 17,000 years ago), and such a
 * bound is a typo anyway, so it is a 400 naming the problem, never a 500.
 */

export const TIME_BOUND_HELP =
  'expected a relative time such as 30m, 2h or 7d, an ISO 8601 time with a zone such as 2025-11-21T08:00:00Z, or a date such as 2025-11-21';

const RELATIVE = /^(\d{1,9})\s*(s|m|h|d|w)$/i;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** How far back a relative bound may reach: ten years is beyond any outbox retention. */
const MAX_RELATIVE_DAYS = 3650;
const MAX_RELATIVE_MS = MAX_RELATIVE_DAYS * 86_400_000;

const EARLIEST_BOUND = new Date('1970-01-01T00:00:00.000Z');
const LATEST_BOUND = new Date('9999-12-31T23:59:59.999Z');

export const OUT_OF_RANGE_MESSAGE = 'is out of range: times must fall between 1970-01-01 and 9999-12-31';
export const TOO_FAR_BACK_MESSAGE = `goes too far back: a relative time reaches at most ${MAX_RELATIVE_DAYS}d (10 years); use a date for anything older`;

export type TimeBound = { ok: true; at: Date } | { ok: false; problem: string };

/** The instant a bound names, or what is wrong with it (a message to show after the field name). */
export function readTimeBound(value: string, now: Date): TimeBound {
  const text = value.trim();
  const relative = RELATIVE.exec(text);
  if (relative) {
    const [, amount, unit] = relative;
    const ms = UNIT_MS[(unit ?? '').toLowerCase()];
    if (amount === undefined || ms === undefined) return { ok: false, problem: TIME_BOUND_HELP };
    const back = Number(amount) * ms;
    if (back > MAX_RELATIVE_MS) return { ok: false, problem: TOO_FAR_BACK_MESSAGE };
    return inRange(new Date(now.getTime() - back));
  }
  if (DATE_ONLY.test(text)) {
    const date = DateTime.fromISO(text, { zone: 'utc' });
    return date.isValid ? inRange(date.toJSDate()) : { ok: false, problem: TIME_BOUND_HELP };
  }
  if (DATE_TIME_WITH_ZONE.test(text)) {
    const time = DateTime.fromISO(text, { setZone: true });
    return time.isValid ? inRange(time.toJSDate()) : { ok: false, problem: TIME_BOUND_HELP };
  }
  return { ok: false, problem: TIME_BOUND_HELP };
}

function inRange(at: Date): TimeBound {
  const ms = at.getTime();
  if (!Number.isFinite(ms) || ms < EARLIEST_BOUND.getTime() || ms > LATEST_BOUND.getTime()) return { ok: false, problem: OUT_OF_RANGE_MESSAGE };
  return { ok: true, at };
}

/**
 * For validation: what is wrong with the text, or undefined when it is an
 * accepted bound. Read against the current clock, which only matters to a
 * relative bound's range (at any real now it lands well after 1970).
 */
export function timeBoundProblem(value: string): string | undefined {
  const bound = readTimeBound(value, new Date());
  return bound.ok ? undefined : bound.problem;
}

/**
 * since/until to instants, or a validation_failed AppError naming the field.
 * `now` is read once by the caller, so every batch of a replay sees the same window.
 */
export function readWindow(since: string | undefined, until: string | undefined, now: Date): { since?: Date; until?: Date } {
  const parse = (field: string, value: string | undefined): Date | undefined => {
    if (value === undefined) return undefined;
    const bound = readTimeBound(value, now);
    if (!bound.ok) throw new AppError('validation_failed', `${field}: ${bound.problem}`);
    return bound.at;
  };
  const from = parse('since', since);
  const to = parse('until', until);
  if (from && to && from >= to) {
    throw new AppError('validation_failed', `until: must be later than since (${from.toISOString()} is not before ${to.toISOString()})`);
  }
  return { ...(from ? { since: from } : {}), ...(to ? { until: to } : {}) };
}
