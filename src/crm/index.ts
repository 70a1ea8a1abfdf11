/** The CRM stage's door: make the configured target; the contract the worker writes through. */
export type { DryRunSentPayload, SentPayload, SentRecord } from './engine/sent-record';
export * from './engine/target-contract';
export { createCrmTarget, type CrmTargetOptions } from './target-registry';
export { CRM_TARGETS, crmKindsOf, type CrmTargetName } from '../core/crm-targets';
