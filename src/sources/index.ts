import { enreach } from './enreach';
import { genesysOcs } from './genesys-ocs';
import { hcc } from './hcc';
import type { SourceAdapter, SourceName } from './types';
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

export type { SourceAdapter, SourceName } from './types';
export { SOURCE_NAMES, isSourceName } from './types';
