import { CRM_KINDS, CRM_TITLES } from '../core/crm-record';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { loadConfigOrExit, type Config, type Env } from '../config';
import { DryRunTarget } from '../crm/dry-run/dry-run-target';
import { createLogger } from '../log';
import { formatMappingErrors, loadExamples, loadMappings, runExamples, type LoadedMappings, type LoadOptions } from '../mapping';
import { MappingError } from '../core/errors';
import { groupByCall, pathEventFromFileName, syntheticEvents, type SyntheticInput } from '../intake/synthetic-events';
import { SOURCES, sourceTimeZones } from '../sources';
import { timeZoneVariables } from '../sources/settings-registry';
import { isSourceName, SOURCE_NAMES, type SourceName } from '../core/event';

/**
 * npm run mappings -- <command>
 *
 *   validate                      check every mapping file; exit 1 with file:line:col errors
 *   preview --source S [--event E] [--update] payload.json...
 *                                 the canonical activity, the exact Salesforce and
 *                                 HubSpot records those payloads give (lookups
 *                                 unresolved) and the request the dry-run target
 *                                 builds from them
 *   test [--source S]             run the example cases in mappings/examples/
 *
 * Options: --dir <mappings dir> (default MAPPINGS_DIR), --json (preview).
 * Bad input gets a message and exit code 1 or 2, never a stack trace.
 */

const USAGE = `usage: npm run mappings -- <command> [options]

commands:
  validate                                  check all mapping files
  preview --source <source> [--event <type>] [--update] <payload.json>...
                                            show the activity, the CRM records and
                                            the dry-run request
  test [--source <source>]                  run the examples in <dir>/examples/

options:
  --dir <dir>     mappings directory (default: MAPPINGS_DIR, ./mappings)
  --json          preview: print one JSON document
  --update        preview: the request for a call already in the CRM (a later
                  sync: create-only fields left out), not for its first sync
sources: ${SOURCE_NAMES.join(', ')}`;

class UsageError extends Error {}

/**
 * The settings the mapping commands read; every other variable (CRM_TARGET
 * and its credentials, DATABASE_URL, secrets) is the service's business, so
 * a RevOps laptop or a CI job can validate without them. Parsed by the
 * service's own schema (src/config.ts) fed only these variables: the same
 * rules and defaults, and only these can be reported as wrong.
 */
const CLI_SETTINGS = [
  'MAPPINGS_DIR',
  'DEFAULT_PHONE_REGION',
  // preview and test file events with zone-less times as intake does, in the source's zone
  ...timeZoneVariables,
  // preview shows the dry-run request as the targets would send it
  'SALESFORCE_EXTERNAL_ID_FIELD',
  'SALESFORCE_API_VERSION',
  'HUBSPOT_ID_PROPERTY',
  'HUBSPOT_ID_PROPERTY_UNIQUE',
] as const satisfies readonly (keyof Env)[];

function cliEnvironment(env: Record<string, string | undefined>): Record<string, string | undefined> {
  return Object.fromEntries(CLI_SETTINGS.map((name) => [name, env[name]]));
}

interface CliOptions extends LoadOptions {
  /** Every source's zone (sourceTimeZones): the loader and preview's events read the same ones. */
  timeZones: Record<SourceName, string>;
  /** Only CLI_SETTINGS come from the environment; the rest are the schema's defaults. */
  config: Config;
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      dir: { type: 'string' },
      source: { type: 'string' },
      event: { type: 'string' },
      json: { type: 'boolean', default: false },
      update: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined && !values.help ? 2 : 0;
  }
  const config = loadConfigOrExit(cliEnvironment(process.env));
  const options: CliOptions = {
    dir: values.dir ?? config.MAPPINGS_DIR,
    defaultRegion: config.DEFAULT_PHONE_REGION,
    timeZones: sourceTimeZones(config),
    config,
  };
  const source = values.source;
  if (source !== undefined && !isSourceName(source)) throw new UsageError(`unknown source "${source}"; sources: ${SOURCE_NAMES.join(', ')}`);

  switch (command) {
    case 'validate':
      return validate(options);
    case 'preview':
      if (source === undefined) throw new UsageError('preview needs --source <source>');
      if (rest.length === 0) throw new UsageError('preview needs at least one payload file');
      return preview(options, source, values.event, rest, { json: values.json, update: values.update });
    case 'test':
      return test(options, source);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

async function load(options: LoadOptions): Promise<LoadedMappings | null> {
  const loaded = await loadMappings(options);
  if (!loaded.ok) {
    process.stderr.write(`${formatMappingErrors(loaded.errors)}\n${count(loaded.errors.length, 'error')} in ${options.dir}\n`);
    return null;
  }
  return loaded.set;
}

async function validate(options: LoadOptions): Promise<number> {
  const loaded = await loadMappings(options);
  const examples = await loadExamples(options.dir);
  const errors = [...(loaded.ok ? [] : loaded.errors), ...(examples.ok ? [] : examples.errors)];
  if (errors.length > 0) {
    process.stderr.write(`${formatMappingErrors(errors)}\n${count(errors.length, 'error')} in ${options.dir}\n`);
    return 1;
  }
  const files = (loaded.ok ? loaded.files.length : 0) + (examples.ok ? examples.files.length : 0);
  process.stdout.write(`ok: ${count(files, 'file')} in ${options.dir} (${SOURCE_NAMES.length} sources, ${examples.ok ? count(examples.cases.length, 'example') : ''})\n`);
  return 0;
}

async function readPayloads(files: string[], source: SourceName, event: string | undefined): Promise<SyntheticInput[]> {
  const inputs: SyntheticInput[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`${file}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    let doc: unknown;
    try {
      doc = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${file}: not valid ${/\.ya?ml$/i.test(file) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
    }
    // A body, a list of bodies, or a fixture sequence { description, events: [...] }.
    const list: unknown[] = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.events) ? doc.events : [doc];
    const type = event ?? pathEventFromFileName(source, file);
    const pathEvents = SOURCES[source].pathEvents;
    if (pathEvents !== undefined && type === undefined) {
      throw new UsageError(`${file}: ${source.toUpperCase()} bodies do not name their event; pass --event (${pathEvents.join(', ')}) or name the file after it`);
    }
    list.forEach((payload, i) => {
      if (!isObject(payload)) throw new UsageError(`${file}: item ${i + 1} is not a JSON object`);
      inputs.push({ payload, eventType: type });
    });
  }
  return inputs;
}

async function preview(
  options: CliOptions,
  source: SourceName,
  event: string | undefined,
  files: string[],
  output: { json: boolean; update: boolean },
): Promise<number> {
  const set = await load(options);
  if (!set) return 1;
  const events = syntheticEvents(source, await readPayloads(files, source, event), { timeZones: options.timeZones });
  // The dry-run target builds exactly the request elements the live targets send; here it runs once per call, offline.
  const dryRun = new DryRunTarget(options.config, createLogger({ level: 'silent' }));
  const calls = [];
  let failed = false;
  for (const [callKey, list] of groupByCall(events)) {
    const activity = await set.fold(source, callKey, list);
    const records = { salesforce: await set.toCrm(activity, 'salesforce'), hubspot: await set.toCrm(activity, 'hubspot') };
    const knownIds: Record<string, string> = {};
    if (output.update) for (const r of [...records.salesforce, ...records.hubspot]) knownIds[r.externalId] = `(id of ${r.externalId})`;
    const [result] = await dryRun.write([{ syncId: 0, externalId: activity.externalId, records, knownIds }]);
    const request = result === undefined ? null : result.ok ? { ok: true, sent: result.sent } : { ok: false, error: result.error.message, sent: result.sent ?? null };
    if (request?.ok === false) failed = true;
    calls.push({
      callKey,
      events: list.map((e) => ({ id: e.id, eventType: e.eventType, disposition: set.classify(source, e.eventType), vendorTime: e.vendorTime?.toISOString() ?? null })),
      activity,
      ...records,
      dryRun: request,
    });
  }
  if (output.json) {
    process.stdout.write(`${JSON.stringify({ source, calls }, null, 2)}\n`);
    return failed ? 1 : 0;
  }
  for (const call of calls) {
    const out: string[] = [];
    out.push(`=== ${source} call ${call.callKey}: ${count(call.events.length, 'event')}, ${call.activity.final ? 'final' : 'not final yet'}`);
    for (const e of call.events) {
      out.push(`  #${e.id} ${e.eventType} (${e.disposition}${e.disposition === 'sync' ? '' : ': not folded'})${e.vendorTime ? ` at ${e.vendorTime}` : ''}`);
    }
    out.push('--- canonical activity', JSON.stringify(call.activity, null, 2));
    for (const crm of CRM_KINDS) {
      const records = call[crm];
      out.push(`--- ${CRM_TITLES[crm]}: ${records.length === 0 ? 'nothing to write' : count(records.length, 'record')}`);
      for (const r of records) {
        out.push(`${r.kind} ${r.object} (external id ${r.externalId})`);
        out.push(`fields: ${JSON.stringify(r.fields, null, 2)}`);
        if (r.createOnly.length > 0) out.push(`on create only: ${r.createOnly.join(', ')}`);
        const lookups = Object.entries(r.lookups);
        if (lookups.length > 0) {
          out.push('lookups (resolved by the CRM target when writing):');
          for (const [name, l] of lookups) {
            out.push(`  ${name}: ${l.by === 'field' ? `${l.object} with ${l.field} = ${l.value}` : `${l.by} ${l.value}`}`);
          }
        }
      }
    }
    out.push(`--- dry-run request, ${output.update ? 'for a call already in the CRM (--update)' : 'for the first sync of the call'}`);
    if (call.dryRun === null) out.push('(the dry-run target gave no result)');
    else if (!call.dryRun.ok) out.push(`the target would refuse it: ${call.dryRun.error}`);
    const sent = call.dryRun?.sent ?? null;
    if (sent !== null) out.push(JSON.stringify(sent, null, 2));
    process.stdout.write(`${out.join('\n')}\n\n`);
  }
  return failed ? 1 : 0;
}

async function test(options: LoadOptions, source: SourceName | undefined): Promise<number> {
  // Validate with the configured settings first: a broken file is reported as such.
  if (!(await load(options))) return 1;
  const examples = await loadExamples(options.dir);
  if (!examples.ok) {
    process.stderr.write(`${formatMappingErrors(examples.errors)}\n`);
    return 1;
  }
  const cases = examples.cases.filter((c) => source === undefined || c.source === source);
  if (cases.length === 0) {
    process.stderr.write(`no examples${source ? ` for ${source}` : ''} in ${path.join(options.dir, 'examples')}\n`);
    return 1;
  }
  const run = await runExamples(options.dir, cases);
  if (!run.ok) {
    process.stderr.write(`${formatMappingErrors(run.errors)}\n`);
    return 1;
  }
  let failed = 0;
  for (const result of run.results) {
    const c = result.example;
    if (result.failures.length === 0) {
      process.stdout.write(`✓ ${c.source}: ${c.name}\n`);
    } else {
      failed += 1;
      process.stdout.write(`✗ ${c.source}: ${c.name} (${c.where})\n${result.failures.map((f) => `    ${f}`).join('\n')}\n`);
    }
  }
  process.stdout.write(`\n${count(cases.length - failed, 'example')} passed, ${failed} failed\n`);
  return failed === 0 ? 0 : 1;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function count(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`${err.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (err instanceof MappingError) {
      const d = err.details;
      process.stderr.write(`${d.file ? `${d.file}:${d.line ?? 0} ` : ''}${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`mappings: ${(err as Error).message ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
