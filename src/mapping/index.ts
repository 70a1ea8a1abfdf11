/**
 * The mapping layer: declarative per-vendor YAML files (mappings/) turned
 * into one canonical activity per call and the records each CRM gets. This
 * barrel is its one public entry; the files behind it are its internals.
 *
 *   const loaded = await loadMappings({ dir, defaultRegion, timeZones: sourceTimeZones(config) });
 *   if (!loaded.ok) { print(formatMappingErrors(loaded.errors)); exit(1) }
 *   loaded.set.classify(source, eventType)          // intake, every webhook (O(1))
 *   await loaded.set.fold(source, callKey, events)  // worker
 *   await loaded.set.toCrm(activity, 'salesforce')  // worker / dry-run
 *
 * The running service holds them in a MappingStore, which reloads on change.
 */
export { loadMappings, type LoadOptions, type LoadResult } from './load-mappings';
export { LoadedMappings } from './loaded-mappings';
export { MappingStore, type MappingStoreOptions } from './mapping-store';
export { formatMappingErrors, type MappingFileError } from './file-errors';
export { loadExamples, runExample, runExamples, EXAMPLE_DEFAULTS, type ExampleCase, type ExampleResult } from './examples';
export * from './mapping-set';
