import { sha256Hex } from '../core/secrets';
import { toEpochMs } from '../core/time';


/** A non-empty string or number as a trimmed string; anything else is null. */
export function stringField(value: unknown): string | null {
  if (typeof value === 'string') {
    const trimmed = value.trim();
    return trimmed === '' ? null : trimmed;
  }
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return null;
}

/**
 * JSON with object keys sorted at every level: the same value gives the same
 * text whatever order a sender wrote its keys in (for hashing a value).
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** Fallback dedupe key when a vendor omits its event id: the same body is the same event. */
export function bodyHashKey(rawBody: string): string {
  return `sha256:${sha256Hex(rawBody)}`;
}

/** Times are read by the mapping layer's transforms, so intake and mappings agree on every value. */
function asDate(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms);
}

/**
 * Genesys OCS 'epoch seconds dot milliseconds' ("1700000125.250"), read as
 * text: through a float the millisecond can be lost or rounded into the
 * next second.
 */
export function parseEpochDotMillis(value: unknown): Date | null {
  return asDate(toEpochMs(value, 'epoch.millis', 'UTC'));
}

/** Epoch milliseconds as a number or a digit string (Webex createdTime); 0 means "not set". */
export function parseEpochMillis(value: unknown): Date | null {
  const ms = toEpochMs(value, 'epoch-ms', 'UTC');
  return ms !== null && ms > 0 ? new Date(ms) : null;
}

/**
 * A timestamp that may or may not carry a zone. With one (Z or ±hh:mm) it is
 * honoured; without, it is read as wall-clock time in `zone`. Impossible
 * values (uContact's '2023-48-13 06:48:51', minutes in the month slot) give
 * null rather than a guess.
 */
export function parseVendorTime(value: unknown, zone: string): Date | null {
  return asDate(toEpochMs(value, 'local', zone));
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
