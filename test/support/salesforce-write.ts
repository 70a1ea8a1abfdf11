import type { CrmRecord, LookupRequest } from '../../src/core/crm-record';
import type { ManualClock } from './manual-clock';
import { testConfig } from './config';
import type { WriteItem } from '../../src/crm/engine/target-contract';
import { SalesforceTarget } from '../../src/crm/salesforce/salesforce-target';
import { createLogger } from '../../src/log';
import type { FakeSalesforce } from '../fakes/salesforce';
import { writeItem } from './crm-write';

/** Setup shared by the SalesforceTarget tests (src/crm/salesforce/*.test.ts). */

const logger = createLogger({ level: 'silent' });

/**
 * The targets of a test file, against the org its `beforeEach` creates
 * (`fake` is read when a test calls them, not now).
 */
export function salesforceTargets(fake: () => FakeSalesforce) {
  function clientCredentials(overrides: Record<string, string> = {}) {
    fake().registerConnectedApp({ clientId: 'cc-client', clientSecret: 'cc-secret', runAsUsername: 'integration@example.com' });
    return testConfig({
      CRM_TARGET: 'salesforce',
      SALESFORCE_LOGIN_URL: fake().loginUrl,
      SALESFORCE_CLIENT_ID: 'cc-client',
      SALESFORCE_CLIENT_SECRET: 'cc-secret',
      ...overrides,
    });
  }

  function target(config = clientCredentials(), clock?: ManualClock): SalesforceTarget {
    return new SalesforceTarget(config, logger, clock === undefined ? {} : { clock });
  }

  return { clientCredentials, target };
}

export function task(externalId: string, fields: CrmRecord['fields'] = {}, lookups: Record<string, LookupRequest> = {}): CrmRecord {
  return {
    kind: 'activity',
    object: 'Task',
    externalId,
    fields: {
      Subject: 'Inbound call',
      Status: 'Completed',
      TaskSubtype: 'Call',
      CallType: 'Inbound',
      CallDurationInSeconds: 42,
      ...fields,
    },
    createOnly: ['TaskSubtype'],
    lookups,
  };
}

export function item(syncId: number, records: CrmRecord[], knownIds: Record<string, string> = {}): WriteItem {
  return writeItem('salesforce', syncId, records, knownIds);
}
