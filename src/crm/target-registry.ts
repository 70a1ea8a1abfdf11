import type { Config } from '../config';
import type { Clock } from '../core/time';
import type { Logger } from '../log';
import type { CrmTarget } from './engine/target-contract';
import type { CrmTargetName } from '../core/crm-targets';

export interface CrmTargetOptions {
  /** Time for pacing, Retry-After and quota pauses (tests move it by hand). */
  clock?: Clock;
}

type CreateTarget = (config: Config, logger: Logger, options: CrmTargetOptions) => Promise<CrmTarget>;

/**
 * How each target is made. Each target's module (jsforce, the HubSpot SDK) is
 * loaded only when chosen: together they add ~30 MB to a process that uses
 * neither. A new CRM is a folder beside salesforce/ plus one entry here and
 * one in core/crm-targets.ts (the types fail until both exist).
 */
const TARGETS: Record<CrmTargetName, CreateTarget> = {
  salesforce: async (config, logger, options) => {
    const { SalesforceTarget } = await import('./salesforce/salesforce-target');
    return new SalesforceTarget(config, logger, options);
  },
  hubspot: async (config, logger, options) => {
    const { HubSpotTarget } = await import('./hubspot/hubspot-target');
    return new HubSpotTarget(config, logger, options);
  },
  'dry-run': async (config, logger) => {
    const { DryRunTarget } = await import('./dry-run/dry-run-target');
    return new DryRunTarget(config, logger);
  },
};

/**
 * The target CRM_TARGET names (dry-run when no CRM is configured). Rejects
 * with a plain Error with a readable message when the configuration cannot
 * work (e.g. an unreadable SALESFORCE_PRIVATE_KEY), so start-up fails clearly.
 */
export async function createCrmTarget(config: Config, logger: Logger, options: CrmTargetOptions = {}): Promise<CrmTarget> {
  const name = config.crmTarget;
  return TARGETS[name](config, logger.child({ crm: name }), options);
}
