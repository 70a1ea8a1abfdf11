import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { DateTime } from 'luxon';

/**
 * Constant-time string comparison. Both sides are hashed first so the
 * comparison takes the same time whatever the lengths: a length mismatch must
 * not answer faster than a wrong last character.
 */
export function safeEqual(given: string | undefined | null, expected: string): boolean {
  if (given === undefined || given === null) return false;
  const a = createHash('sha256').update(given, 'utf8').digest();
  return timingSafeEqual(a, expectedDigest(expected));
}

/** The digests of the configured secrets, computed once (they are few and fixed). */
const expectedDigests = new Map<string, Buffer>();
function expectedDigest(expected: string): Buffer {
  let digest = expectedDigests.get(expected);
  if (!digest) {
    if (expectedDigests.size > 64) expectedDigests.clear();
    digest = createHash('sha256').update(expected, 'utf8').digest();
    expectedDigests.set(expected, digest);
  }
  return digest;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function hmacSha256Hex(secret: string, body: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

/** A non-empty string or number as a trimmed string; anything else is null. */
export function stringField(value: unknown): string | null {
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return trimmed === '' ? null : trimmed;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/** Fallback dedupe key when a vendor omits its event id: the same body is the same event. */
export function bodyHashKey(rawBody: string): string {
  return `sha256:${sha256Hex(rawBody)}`;
}

/**
 * Genesys OCS 'epoch seconds dot milliseconds' ("1700000125.250"). Parsed as
 * a string: as a float, 1700000125.251 is 1700000125.2509999 and the
 * millisecond is lost.
 */
export function parseEpochDotMillis(value: unknown): Date | null {
  const text = typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
  if (typeof text !== 'string') return null;
  const match = /^\s*(\d{1,12})(?:\.(\d+))?\s*$/.exec(text);
  if (!match) return null;
  const seconds = Number(match[1]);
  const millis = Number(((match[2] ?? '') + '000').slice(0, 3));
  const date = new Date(seconds * 1000 + millis);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** Epoch milliseconds as a number or a digit string (Webex createdTime). */
export function parseEpochMillis(value: unknown): Date | null {
  const n = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,16}$/.test(value.trim()) ? Number(value) : NaN;
  if (!Number.isFinite(n) || n <= 0) return null;
  const date = new Date(n);
  return Number.isNaN(date.getTime()) ? null : date;
}

const LOCAL_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?$/;

/**
 * A timestamp that may or may not carry a zone. With one (Z or ±hh:mm) it is
 * honoured; without, it is read as wall-clock time in `zone`. Impossible
 * values (uContact's '2023-48-13 06:48:51', minutes in the month slot) give
 * null rather than a guess.
 */
export function parseVendorTime(value: unknown, zone: string): Date | null {
  if (typeof value !== 'string') return null;
  const text = value.trim();
  if (text === '') return null;
  const local = LOCAL_TIME.exec(text);
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
    return dt.isValid ? dt.toJSDate() : null;
  }
  const zoned = DateTime.fromISO(text, { setZone: true });
  return zoned.isValid ? zoned.toJSDate() : null;
}

/** Credentials from `Authorization: Basic ...`, or null. */
export function basicCredentials(header: string | undefined): { user: string; password: string } | null {
  if (!header) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!match?.[1]) return null;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
