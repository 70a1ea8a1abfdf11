import { enreach } from './enreach/adapter';
import { genesysOcs } from './genesys-ocs/adapter';
import { hcc } from './hcc/adapter';
import type { SourceEnv } from './settings-registry';
import type { SourceAdapter } from './types';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import { ucontact } from './ucontact/adapter';
import { webexCc } from './webex-cc/adapter';

/**
 * Every source we accept, by URL name: the one list of adapters. A SourceName
 * without an adapter fails to compile; registry.test.ts checks each has its
 * whole folder (settings, notes, fixtures, goldens). Layout: README.md here.
 */
export const SOURCES: Record<SourceName, SourceAdapter> = {
  'genesys-ocs': genesysOcs,
  enreach,
  ucontact,
  hcc,
  'webex-cc': webexCc,
};

export type { SourceAdapter } from './types';

/** Each source's zone for zone-less vendor times, as configured (UTC when the source has none). */
export function sourceTimeZones(config: SourceEnv): Record<SourceName, string> {
  const zones = {} as Record<SourceName, string>;
  for (const name of SOURCE_NAMES) {
    const setting = SOURCES[name].timeZone;
    zones[name] = setting === undefined ? 'UTC' : config[setting.variable];
  }
  return zones;
}
