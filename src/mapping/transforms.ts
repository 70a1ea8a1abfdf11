import type { DurationUnit } from './language-terms';

/**
 * The conversions a mapping can apply to a value. Each takes what a vendor
 * sent and answers a clean value or null ("missing"), never throws: a bad
 * value in one webhook must not fail the whole call. Wrong mapping files are
 * caught at load, not here.
 */

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
