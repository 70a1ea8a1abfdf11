/** The CRM stage's door: make the configured target; the contract the worker writes through. */
export * from './engine/target-contract';
export { createCrmTarget, type CrmTargetOptions } from './target-registry';
