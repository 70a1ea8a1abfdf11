import { DateTime } from 'luxon';

/**
 * Time bounds for the admin's filters (since/until): an ISO 8601 time with a
 * zone, a plain date (midnight UTC), or a time relative to now such as
 * '30m', '2h', '7d' (meaning "that long ago").
 *
 * A zone-less date-time is refused rather than guessed: the admin may sit in
 * another zone than the server, and "since 08:00" off by hours replays the
 * wrong calls.
 */

export const TIME_BOUND_HELP =
  'expected a relative time such as 30m, 2h or 7d, an ISO 8601 time with a zone such as 2025-11-21T08:00:00Z, or a date such as 2025-11-21';

const RELATIVE = /^(\d{1,6})\s*(s|m|h|d|w)$/i;
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME_WITH_ZONE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)$/i;

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The instant a bound names, or undefined when it is not one of the accepted forms. */
export function parseTimeBound(value: string, now: Date): Date | undefined {
  const text = value.trim();
  const relative = RELATIVE.exec(text);
  if (relative) {
    const [, amount, unit] = relative;
    const ms = UNIT_MS[(unit ?? '').toLowerCase()];
    if (amount === undefined || ms === undefined) return undefined;
    return new Date(now.getTime() - Number(amount) * ms);
  }
  if (DATE_ONLY.test(text)) {
    const date = DateTime.fromISO(text, { zone: 'utc' });
    return date.isValid ? date.toJSDate() : undefined;
  }
  if (DATE_TIME_WITH_ZONE.test(text)) {
    const time = DateTime.fromISO(text, { setZone: true });
    return time.isValid ? time.toJSDate() : undefined;
  }
  return undefined;
}

/** For validation: whether the text is an accepted bound (relative forms are valid at any `now`). */
export function isTimeBound(value: string): boolean {
  return parseTimeBound(value, new Date(0)) !== undefined;
}
