import { z } from 'zod';

/**
 * Parsers for environment variable values, shared by src/config.ts and the
 * sources' settings (src/sources/<vendor>/settings.ts), which declare their
 * own variables with them.
 */

export const optionalSecret = z
  .string()
  .transform((s) => s.trim())
  .optional()
  .transform((s) => (s === undefined || s === '' ? undefined : s));

export const optionalString = optionalSecret;

export const intFromEnv = (def: number, min: number, max: number) => z.coerce.number().int().min(min).max(max).default(def);

export const boolFromEnv = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

function isIanaZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** An IANA time zone, UTC when unset; `example` is named in the error message. */
export const ianaZone = (example: string) =>
  z.string().default('UTC').refine(isIanaZone, `must be an IANA time zone such as ${example}`);

export const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

/**
 * A rule across variables. It names the variables it reads, and runs
 * whenever all of those are valid on their own, so one bad value elsewhere
 * does not hide it: the start-up message lists every problem at once.
 */
export interface EnvRule<Values> {
  reads: readonly (keyof Values & string)[];
  check(env: Values): { variable: keyof Values & string; message: string } | null;
}
