import { DateTime, IANAZone } from 'luxon';

/**
 * Time: the clock the CRM targets pace by, sleeping, and reading vendor
 * times into epoch milliseconds.
 *
 * The targets' clock: Pacing, Retry-After, quota pauses and cache
 * expiry all read this clock, so tests can move time forward instead of
 * sleeping; network timeouts stay on real timers (see deadline.ts).
 */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Like sleep, but an abort ends the wait quietly (loops that then check why they woke). */
export function sleepUnlessAborted(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 || signal?.aborted) return Promise.resolve();
  return sleep(ms, signal).catch(() => undefined);
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep,
};

// ---------------------------------------------------------------- vendor times

export const TIME_FORMATS = ['epoch-s', 'epoch-ms', 'epoch.millis', 'iso', 'local'] as const;
export type TimeFormat = (typeof TIME_FORMATS)[number];

export function isValidZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

const DECIMAL_SECONDS = /^\s*(\d{1,12})(?:\.(\d+))?\s*$/;
const DIGITS = /^\s*\d{1,16}\s*$/;

/**
 * Seconds with a decimal fraction, read as text. Genesys sends
 * 'epoch.millis' strings such as "1700000125.251": as a float that is
 * 1700000125.2509999 and the millisecond is lost, so the two halves are read
 * separately.
 */
function decimalSecondsToMs(text: string): number | null {
  const m = DECIMAL_SECONDS.exec(text);
  if (!m) return null;
  return Number(m[1]) * 1000 + Number(((m[2] ?? '') + '000').slice(0, 3));
}

/** Epoch milliseconds for a vendor time, or null when it is missing or impossible. */
export function toEpochMs(value: unknown, format: TimeFormat, zone: string): number | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  let ms: number | null = null;
  switch (format) {
    case 'epoch-s':
      if (typeof value === 'number') ms = Math.round(value * 1000);
      else if (typeof value === 'string') ms = decimalSecondsToMs(value);
      break;
    case 'epoch.millis':
      if (typeof value === 'string') ms = decimalSecondsToMs(value);
      else if (typeof value === 'number') ms = decimalSecondsToMs(String(value));
      break;
    case 'epoch-ms':
      if (typeof value === 'number') ms = Math.round(value);
      else if (typeof value === 'string' && DIGITS.test(value)) ms = Number(value.trim());
      break;
    case 'iso':
    case 'local':
      if (typeof value === 'string') ms = parseTextTime(value, zone);
      break;
  }
  if (ms === null || !Number.isFinite(ms)) return null;
  // Outside what Date can hold (e.g. digits that were never a time).
  return Math.abs(ms) > 8.64e15 ? null : ms;
}

const SQL_LIKE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;
const ISO_WITH_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})$/;

/** Wall-clock parts read as UTC without luxon (the hot path); impossible dates are null. */
function utcFromParts(m: RegExpExecArray): number | null {
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  const millis = Number(((m[7] ?? '') + '000').slice(0, 3));
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second, millis);
  // Date.UTC rolls 31 February over into March: refuse it instead.
  return new Date(ms).getUTCDate() === day ? ms : null;
}

/**
 * ISO 8601 or 'YYYY-MM-DD HH:mm:ss'. An offset in the text (Z, +02:00) is
 * honoured; without one the wall-clock time is read in `zone`. Impossible
 * dates (uContact's '2023-48-13 06:48:51') are null, not rolled over.
 */
export function parseTextTime(text: string, zone: string): number | null {
  const t = text.trim();
  if (t === '') return null;
  // Fast path (most values, and every time the activity holds): ISO with Z or an offset.
  if (ISO_WITH_OFFSET.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  const local = SQL_LIKE.exec(t);
  if (local && zone === 'UTC') return utcFromParts(local);
  if (local) {
    const dt = DateTime.fromObject(
      {
        year: Number(local[1]),
        month: Number(local[2]),
        day: Number(local[3]),
        hour: Number(local[4]),
        minute: Number(local[5]),
        second: Number(local[6] ?? 0),
        millisecond: Number(((local[7] ?? '') + '000').slice(0, 3)),
      },
      { zone },
    );
    return dt.isValid ? dt.toMillis() : null;
  }
  const dt = DateTime.fromISO(t, { zone, setZone: true });
  return dt.isValid ? dt.toMillis() : null;
}

export function isoFromMs(ms: number): string {
  return new Date(ms).toISOString();
}

/** An ISO string or Date already in the activity, as epoch ms. */
export function activityTimeMs(value: unknown): number | null {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.getTime();
  if (typeof value === 'string') return parseTextTime(value, 'UTC');
  return null;
}

/** The calendar date (YYYY-MM-DD) of a time in `zone`: Salesforce ActivityDate. */
export function toDate(value: unknown, zone: string): string | null {
  const ms = activityTimeMs(value);
  if (ms === null) return null;
  return DateTime.fromMillis(ms, { zone }).toISODate();
}
