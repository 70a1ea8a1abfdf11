import { enreach } from './enreach';
import { genesysOcs } from './genesys-ocs';
import { hcc } from './hcc';
import type { SourceAdapter } from './types';
import type { Config } from '../config';
import { SOURCE_NAMES, type SourceName } from '../core/event';
import { ucontact } from './ucontact';
import { webexCc } from './webex-cc';

/** Every source we accept, by URL name. A SourceName without an adapter fails to compile. */
export const SOURCES: Record<SourceName, SourceAdapter> = {
  'genesys-ocs': genesysOcs,
  enreach,
  ucontact,
  hcc,
  'webex-cc': webexCc,
};

export type { SourceAdapter } from './types';

/** Each source's zone for zone-less vendor times, as configured (UTC when the source has none). */
export function sourceTimeZones(config: Config): Record<SourceName, string> {
  const zones = {} as Record<SourceName, string>;
  for (const name of SOURCE_NAMES) {
    const setting = SOURCES[name].timeZone;
    zones[name] = setting === undefined ? 'UTC' : config[setting.variable];
  }
  return zones;
}
