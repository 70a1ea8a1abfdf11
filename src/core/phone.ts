import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from 'libphonenumber-js';

/**
 * Phone numbers as the lookups need them. The mapping layer hands us E.164;
 * the CRM holds whatever a rep typed ("(555) 123-4567", "+44 20 7946 0958",
 * "020 7946 0958"). We search broadly with digit strings and then keep only
 * candidates whose stored number parses to the same E.164, so formatting
 * differences match and look-alikes (same digits, other country) do not.
 */

// 7 to 15 digits: the shortest numbers in use (e.g. Saint Helena's +290 and
// four digits) have seven; the mapping and the CRM lookups must agree.
const E164 = /^\+[1-9]\d{6,14}$/;

export function isE164(value: string): boolean {
  return E164.test(value);
}

// A phone search answers the same records (and so the same stored numbers)
// again and again, and each parse costs tens of microseconds: parse each
// stored text once. Bounded: cleared whole when full, which is cheaper than
// an LRU's bookkeeping on every hit.
const e164Cache = new Map<string, string | null>();
const E164_CACHE_MAX = 20_000;

/** The stored value as E.164, reading numbers without a country code in `region`. */
export function toE164(raw: string | null | undefined, region: CountryCode): string | undefined {
  if (raw === null || raw === undefined) return undefined;
  const trimmed = raw.trim();
  if (trimmed === '') return undefined;
  const key = `${region}:${trimmed}`;
  const hit = e164Cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const parsed = parsePhoneNumberFromString(trimmed, region)?.number ?? null;
  if (e164Cache.size >= E164_CACHE_MAX) e164Cache.clear();
  e164Cache.set(key, parsed);
  return parsed ?? undefined;
}

/** The national significant number: what HubSpot's hs_searchable_calculated_* properties hold. */
export function nationalSignificantNumber(e164: string): string | undefined {
  return parsePhoneNumberFromString(e164)?.nationalNumber;
}

/**
 * Digit strings a CRM search may know this number by: the national
 * significant number, the full international digits, and the national form
 * with its trunk prefix when that differs (e.g. Finland's leading 0).
 */
export function searchDigits(e164: string): string[] {
  const parsed = parsePhoneNumberFromString(e164);
  if (parsed === undefined) return [e164.replace(/\D/g, '')];
  const national = parsed.format('NATIONAL').replace(/\D/g, '');
  return [...new Set([parsed.nationalNumber, `${parsed.countryCallingCode}${parsed.nationalNumber}`, national])].filter(
    (digits) => digits.length >= 6,
  );
}

export function regionOf(value: string): CountryCode {
  return value as CountryCode;
}

export function isPhoneRegion(region: string): region is CountryCode {
  return isSupportedCountry(region);
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
