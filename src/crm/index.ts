import type { Config } from '../config';
import type { Logger } from '../log';
import type { Clock } from './clock';
import { DryRunTarget } from './dry-run';
import { HubSpotTarget } from './hubspot';
import { SalesforceTarget } from './salesforce';
import type { CrmTarget } from './types';

export { DryRunTarget } from './dry-run';
export { HubSpotTarget } from './hubspot';
export { SalesforceTarget } from './salesforce';
export type { DryRunSentPayload, SentPayload, SentRecord } from './sent';
export * from './types';

export interface CrmTargetOptions {
  /** Time for pacing, Retry-After and quota pauses (tests move it by hand). */
  clock?: Clock;
}

/**
 * The target CRM_TARGET names (dry-run when no CRM is configured). Throws a
 * plain Error with a readable message when the configuration cannot work
 * (e.g. an unreadable SALESFORCE_PRIVATE_KEY), so start-up fails clearly.
 */
export function createCrmTarget(config: Config, logger: Logger, options: CrmTargetOptions = {}): CrmTarget {
  switch (config.crmTarget) {
    case 'salesforce':
      return new SalesforceTarget(config, logger.child({ crm: 'salesforce' }), options);
    case 'hubspot':
      return new HubSpotTarget(config, logger.child({ crm: 'hubspot' }), options);
    case 'dry-run':
      return new DryRunTarget(config, logger.child({ crm: 'dry-run' }));
  }
}
