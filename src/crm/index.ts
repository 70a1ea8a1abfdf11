import type { Config } from '../config';
import type { Logger } from '../log';
import type { Clock } from '../core/time';
import type { CrmTarget } from './types';

export type { DryRunSentPayload, SentPayload, SentRecord } from './sent';
export * from './types';

export interface CrmTargetOptions {
  /** Time for pacing, Retry-After and quota pauses (tests move it by hand). */
  clock?: Clock;
}

/**
 * The target CRM_TARGET names (dry-run when no CRM is configured). Rejects
 * with a plain Error with a readable message when the configuration cannot
 * work (e.g. an unreadable SALESFORCE_PRIVATE_KEY), so start-up fails clearly.
 *
 * Each target's module (jsforce, the HubSpot SDK) is loaded only when chosen:
 * together they add ~30 MB to a process that uses neither.
 */
export async function createCrmTarget(config: Config, logger: Logger, options: CrmTargetOptions = {}): Promise<CrmTarget> {
  switch (config.crmTarget) {
    case 'salesforce': {
      const { SalesforceTarget } = await import('./salesforce');
      return new SalesforceTarget(config, logger.child({ crm: 'salesforce' }), options);
    }
    case 'hubspot': {
      const { HubSpotTarget } = await import('./hubspot');
      return new HubSpotTarget(config, logger.child({ crm: 'hubspot' }), options);
    }
    case 'dry-run': {
      const { DryRunTarget } = await import('./dry-run');
      return new DryRunTarget(config, logger.child({ crm: 'dry-run' }));
    }
  }
}
