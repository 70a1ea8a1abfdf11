import type { z } from 'zod';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import type { EnvRule } from '../env-values';
import { enreachSettings } from './enreach/settings';
import { genesysOcsSettings } from './genesys-ocs/settings';
import { hccSettings } from './hcc/settings';
import type { AnySourceSettings } from './source-settings';
import { ucontactSettings } from './ucontact/settings';
import { webexCcSettings } from './webex-cc/settings';

/**
 * Every source's settings, by URL name: what src/config.ts and src/log.ts
 * assemble. Each adapter (src/sources/index.ts) takes its headers and time
 * zone from the same object; src/sources/registry.test.ts checks they agree.
 */
export const SOURCE_SETTINGS = {
  'genesys-ocs': genesysOcsSettings,
  enreach: enreachSettings,
  ucontact: ucontactSettings,
  hcc: hccSettings,
  'webex-cc': webexCcSettings,
} satisfies Record<SourceName, AnySourceSettings>;

type EachSourceSettings = (typeof SOURCE_SETTINGS)[SourceName];
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;

/** Every source's environment variables in one zod shape, in source order. */
export type SourceEnvShape = UnionToIntersection<EachSourceSettings['env']>;
export type SourceEnv = z.infer<z.ZodObject<SourceEnvShape>>;

/** The variables that name a source's zone for zone-less vendor times. */
export type TimeZoneVariable = ZoneVariableOf<EachSourceSettings>;
type ZoneVariableOf<S> = S extends { readonly timeZone: { readonly variable: infer V } } ? V : never;

function assembleEnvShape(): SourceEnvShape {
  const shape: z.ZodRawShape = {};
  for (const name of SOURCE_NAMES) Object.assign(shape, SOURCE_SETTINGS[name].env);
  // Each source's own shape is typed; their union is by construction the intersection.
  return shape as SourceEnvShape;
}

export const sourceEnvShape = assembleEnvShape();

/** Every source's rules across its own variables. */
export const sourceEnvRules: readonly EnvRule<SourceEnv>[] = SOURCE_NAMES.flatMap((name) => {
  const settings = SOURCE_SETTINGS[name];
  const own: readonly EnvRule<SourceEnv>[] = 'envRules' in settings ? settings.envRules : [];
  return own;
});

/** Lower-case names of every header that carries a source's credential. */
export const credentialHeaders: readonly string[] = [...new Set(SOURCE_NAMES.flatMap((name) => SOURCE_SETTINGS[name].redactedHeaders))];

/** Every source's time-zone variable (HCC_TIMEZONE...), for tools that read only these settings. */
export const timeZoneVariables: readonly TimeZoneVariable[] = SOURCE_NAMES.flatMap((name) => {
  const settings = SOURCE_SETTINGS[name];
  return 'timeZone' in settings ? [settings.timeZone.variable] : [];
});
