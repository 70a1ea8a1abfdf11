import type { CrmKind } from './crm-record';

/**
 * The CRM targets CRM_TARGET can name, and the records each needs built: the
 * one list (config validates against it, the registry is typed by it). No
 * heavy imports here: config and the admin load it in every process.
 */
export const CRM_TARGET_NEEDS = {
  salesforce: ['salesforce'],
  hubspot: ['hubspot'],
  // Dry-run shows what either CRM would receive.
  'dry-run': ['salesforce', 'hubspot'],
} as const satisfies Record<string, readonly CrmKind[]>;

export type CrmTargetName = keyof typeof CRM_TARGET_NEEDS;

/** The names, in order, as zod's enum wants them (a non-empty tuple). */
export const CRM_TARGETS = Object.keys(CRM_TARGET_NEEDS) as [CrmTargetName, ...CrmTargetName[]];

/** The CRM records a target needs, for a process without a target of its own (web role, CLI). */
export function crmKindsOf(target: CrmTargetName): readonly CrmKind[] {
  return CRM_TARGET_NEEDS[target];
}
