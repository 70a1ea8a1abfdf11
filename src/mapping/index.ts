/**
 * The mapping layer: declarative per-vendor YAML files (mappings/) turned
 * into one canonical activity per call and the records each CRM gets.
 *
 *   const loaded = await loadMappings({ dir, defaultRegion, hccTimezone });
 *   if (!loaded.ok) { print(formatMappingErrors(loaded.errors)); exit(1) }
 *   loaded.set.classify(source, eventType)          // intake, every webhook (O(1))
 *   await loaded.set.fold(source, callKey, events)  // worker
 *   await loaded.set.toCrm(activity, 'salesforce')  // worker / dry-run
 *
 * The running service holds them in a MappingStore, which reloads on change.
 */
export { loadMappings, LoadedMappings, type LoadOptions, type LoadResult } from './loader';
export { MappingStore, type MappingStoreOptions } from './store';
export { formatMappingErrors, type MappingFileError } from './errors';
export { loadExamples, runExample, runExamples, EXAMPLE_DEFAULTS, type ExampleCase, type ExampleResult } from './examples';
export { syntheticEvents, identify, groupByCall, type SyntheticInput } from './synthetic';
export * from './types';
