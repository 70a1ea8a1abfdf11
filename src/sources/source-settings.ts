import type { z } from 'zod';
import type { EnvRule } from '../env-values';

/**
 * What a source declares about its configuration and its headers
 * (src/sources/<vendor>/settings.ts). Kept apart from the adapter so that
 * src/config.ts and src/log.ts can assemble every source's variables and
 * redactions without importing the adapters (which import the Config type).
 */
export interface SourceSettings<
  Shape extends z.ZodRawShape = z.ZodRawShape,
  Zone extends string = string,
  Values = z.infer<z.ZodObject<Shape>>,
> {
  /** The environment variables this source reads, parsed with every other variable by src/config.ts. */
  readonly env: Shape;
  /** Rules across this source's own variables (checked after each is valid on its own). */
  readonly envRules?: readonly EnvRule<Values>[];
  /** Lower-case names of headers worth keeping with the event; credentials are never listed. */
  readonly keptHeaders: readonly string[];
  /** Lower-case names of the headers that carry this source's credential: redacted from every log line. */
  readonly redactedHeaders: readonly string[];
  /**
   * For a vendor whose times carry no zone: the environment variable that
   * names the account's IANA zone (default UTC), and the setting name a
   * mapping file uses for it (`zone: $<name>`) and an examples file sets.
   */
  readonly timeZone?: { readonly variable: Zone; readonly name: string };
}

/** Any source's settings, as the registry holds them (rules are read against the whole environment). */
export type AnySourceSettings = SourceSettings<z.ZodRawShape, string, never>;

/** Declares a source's settings, keeping their exact type (variable names, whether a zone is declared). */
export function defineSourceSettings<
  const Shape extends z.ZodRawShape,
  const Rest extends Omit<SourceSettings<Shape, keyof Shape & string>, 'env'>,
>(settings: { readonly env: Shape } & Rest): { readonly env: Shape } & Rest {
  return settings;
}
