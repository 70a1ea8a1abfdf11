import type { CrmRecord, LookupRequest } from '../../src/core/crm-record';
import type { ManualClock } from './manual-clock';
import { testConfig } from './config';
import type { WriteItem } from '../../src/crm/engine/target-contract';
import { HubSpotTarget } from '../../src/crm/hubspot/hubspot-target';
import { createLogger } from '../../src/log';
import type { FakeHubSpot } from '../fakes/hubspot';
import { writeItem } from './crm-write';

/** Setup shared by the HubSpotTarget tests (src/crm/hubspot/*.test.ts). */

const logger = createLogger({ level: 'silent' });

/**
 * The targets of a test file, against the portal its `beforeEach` creates
 * (`fake` is read when a test calls them, not now).
 */
export function hubspotTargets(fake: () => FakeHubSpot) {
  function config(overrides: Record<string, string> = {}) {
    return testConfig({ CRM_TARGET: 'hubspot', HUBSPOT_ACCESS_TOKEN: fake().accessToken, ...overrides });
  }

  function target(overrides: Record<string, string> = {}, clock?: ManualClock): HubSpotTarget {
    return new HubSpotTarget(config(overrides), logger, clock === undefined ? {} : { clock });
  }

  return { config, target };
}

export function call(externalId: string, properties: CrmRecord['fields'] = {}, lookups: Record<string, LookupRequest> = {}): CrmRecord {
  return {
    kind: 'activity',
    object: 'calls',
    externalId,
    fields: {
      hs_timestamp: '2025-01-15T12:00:00.000Z',
      hs_call_title: 'Inbound call',
      hs_call_direction: 'INBOUND',
      hs_call_status: 'COMPLETED',
      hs_call_duration: 42_000,
      ...properties,
    },
    createOnly: [],
    lookups,
  };
}

export function item(syncId: number, records: CrmRecord[], knownIds: Record<string, string> = {}): WriteItem {
  return writeItem('hubspot', syncId, records, knownIds);
}

export const contactBy = (phone: string) => ({ contact: { by: 'phone', value: phone } as const });

/** The requests that write calls, for `failNext`. */
export const WRITES = ['create', 'upsert'] as const;
