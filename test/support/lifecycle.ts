import type { CallActivity } from '../../src/core/activity';
import type { SourceName, StoredEvent } from '../../src/core/event';
import { syntheticEvents } from '../../src/intake/synthetic-events';
import { loadMappings } from '../../src/mapping/load-mappings';
import { type LoadedMappings } from '../../src/mapping/loaded-mappings';
import { SHIPPED_DIR } from './mappings';

/**
 * Shared setup of the lifecycle tests (src/mapping/lifecycle-*.test.ts):
 * the shipped mappings loaded with HCC's time zone, and stored events built
 * from fixture payloads.
 */

export const HCC_TZ = 'America/Chicago';

/** The shipped mappings, as the lifecycle tests load them (throws on a load error). */
export async function loadShippedMappings(): Promise<LoadedMappings> {
  const loaded = await loadMappings({ dir: SHIPPED_DIR, defaultRegion: 'US', timeZones: { hcc: HCC_TZ } });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
  return loaded.set;
}

export function events(source: SourceName, payloads: { payload: Record<string, unknown>; eventType?: string; receivedAt?: Date }[], firstId = 1): StoredEvent[] {
  return syntheticEvents(source, payloads, { timeZones: { hcc: HCC_TZ }, firstId });
}

/** Folds a list of events as one call (keyed by its first event's call key). */
export async function foldCall(set: LoadedMappings, source: SourceName, list: StoredEvent[]): Promise<CallActivity> {
  return set.fold(source, list[0]?.callKey ?? '', list);
}
