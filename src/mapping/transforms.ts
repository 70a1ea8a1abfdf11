import { parsePhoneNumberFromString, isSupportedCountry, type CountryCode } from 'libphonenumber-js';
import { DateTime, IANAZone } from 'luxon';
import type { DurationUnit, TimeFormat } from './schema';

/**
 * The conversions a mapping can apply to a value. Each takes what a vendor
 * sent and answers a clean value or null ("missing"), never throws: a bad
 * value in one webhook must not fail the whole call. Wrong mapping files are
 * caught at load, not here.
 */

export function isValidZone(zone: string): boolean {
  return IANAZone.isValidZone(zone);
}

export function isPhoneRegion(region: string): region is CountryCode {
  return isSupportedCountry(region);
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

export function toNumber(value: unknown): number | null {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') {
    const t = value.trim();
    if (t === '' || !/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return null;
    const n = Number(t);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/** A duration in `from` units converted to `to` units, as a whole number. */
export function convertDuration(value: unknown, from: DurationUnit, to: DurationUnit): number | null {
  const n = toNumber(value);
  if (n === null || n < 0) return null;
  const ms = from === 's' ? n * 1000 : n;
  return Math.round(to === 's' ? ms / 1000 : ms);
}

// The same numbers recur across the events of a call and across calls: parse each once.
const phoneCache = new Map<string, string>();
const PHONE_CACHE_MAX = 20_000;

/** E.164 when libphonenumber says the number is valid for the region, else the trimmed raw value. */
export function toPhone(value: unknown, region: CountryCode): string | null {
  const raw = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : null;
  if (raw === null || raw === '') return null;
  const key = `${region}:${raw}`;
  const hit = phoneCache.get(key);
  if (hit !== undefined) return hit;
  const parsed = parsePhoneNumberFromString(raw, region);
  const out = parsed?.isValid() ? parsed.number : raw;
  if (phoneCache.size >= PHONE_CACHE_MAX) phoneCache.clear();
  phoneCache.set(key, out);
  return out;
}

export function isE164(value: string): boolean {
  return /^\+[1-9]\d{5,14}$/.test(value);
}

const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function toEmail(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const t = value.trim();
  return EMAIL.test(t) ? t : null;
}

export function toBoolean(value: unknown): boolean | null {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === '1' || value === 'true' || value === 'TRUE' || value === 'True') return true;
  if (value === 0 || value === '0' || value === 'false' || value === 'FALSE' || value === 'False') return false;
  return null;
}

export function toText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  return null;
}

/** Cut to n characters without splitting a surrogate pair. */
export function truncate(value: string, n: number): string {
  if (value.length <= n) return value;
  return Array.from(value).slice(0, n).join('');
}

/** Values compare as numbers when both look like numbers, otherwise as text. */
export function looseEquals(a: unknown, b: unknown, ignoreCase = false): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== null && nb !== null) return na === nb;
  const ta = toText(a);
  const tb = toText(b);
  if (ta === null || tb === null) return false;
  return ignoreCase ? ta.toLowerCase() === tb.toLowerCase() : ta === tb;
}

/** Key for a value table: numbers and booleans as their text. */
export function tableKey(value: unknown): string | null {
  return toText(value);
}
