import { parseConfig, type Config } from '../config';
import { SOURCE_NAMES, type SourceName, type StoredEvent } from '../core/event';
import { SOURCES } from '../sources';
import { identifyChecked, outboxEvent } from './pipeline';

/**
 * StoredEvents built from bare vendor payloads, filed by the intake
 * pipeline's own steps (the adapter's identify, then the outbox row): for
 * `mappings preview`, the example cases beside the mappings, tests and the
 * benchmark. Production events come from the outbox, never from here.
 */

export interface SyntheticInput {
  payload: Record<string, unknown>;
  /** The event type when the body does not say (HCC's URL event). */
  eventType?: string | undefined;
  headers?: Record<string, string> | undefined;
  /** Default: the vendor time, else a fixed instant. */
  receivedAt?: Date | undefined;
}

export interface SyntheticOptions {
  /** Each source's zone for zone-less vendor times (default UTC), as its time-zone variable would set it. */
  timeZones?: Partial<Record<SourceName, string>>;
  /** First id to hand out; ids only need to be unique. */
  firstId?: number;
}

/** A fixed "received" instant for bodies that carry no usable time of their own. */
const SYNTHETIC_RECEIVED_AT = new Date('2024-01-01T00:00:00.000Z');

const configs = new Map<string, Config>();
/** The config intake would run with, as far as identify reads it: the sources' time zones. */
function configFor(timeZones: Partial<Record<SourceName, string>>): Config {
  const env: Record<string, string> = {};
  for (const name of SOURCE_NAMES) {
    const setting = SOURCES[name].timeZone;
    if (setting !== undefined) env[setting.variable] = timeZones[name] ?? 'UTC';
  }
  const key = JSON.stringify(env);
  let config = configs.get(key);
  if (!config) configs.set(key, (config = parseConfig(env)));
  return config;
}

export function syntheticEvents(source: SourceName, inputs: readonly SyntheticInput[], options: SyntheticOptions = {}): StoredEvent[] {
  const adapter = SOURCES[source];
  const config = configFor(options.timeZones ?? {});
  let id = options.firstId ?? 1;
  return inputs.map((input) => {
    // The body as the vendor would post it, with the headers or path parameters that name its type.
    const delivery = adapter.syntheticDelivery?.(input.eventType) ?? {};
    const webhook = {
      rawBody: JSON.stringify(input.payload),
      json: input.payload,
      headers: delivery.headers ?? {},
      params: delivery.params ?? {},
      query: new URLSearchParams(),
      receivedAt: input.receivedAt ?? SYNTHETIC_RECEIVED_AT,
    };
    const identified = identifyChecked(adapter, webhook, config);
    // What intake would refuse with a 400 is no event to preview either.
    if (!identified.ok) throw identified.error;
    const { identity } = identified;
    const row = outboxEvent(
      adapter,
      { ...webhook, headers: lowerCaseNames(input.headers ?? {}) },
      { ...identity, eventType: input.eventType ?? identity.eventType },
      'pending',
    );
    return {
      id: id++,
      source,
      eventType: row.eventType,
      dedupeKey: row.dedupeKey,
      callKey: row.callKey,
      vendorTime: row.vendorTime,
      vendorTimeRaw: row.vendorTimeRaw,
      receivedAt: input.receivedAt ?? row.vendorTime ?? SYNTHETIC_RECEIVED_AT,
      payload: input.payload,
      headers: row.headers,
    };
  });
}

/** Header names as a server sees them (lower case), so preview keeps what production keeps. */
function lowerCaseNames(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

/** Events grouped by call, in first-seen order. */
export function groupByCall(events: readonly StoredEvent[]): Map<string, StoredEvent[]> {
  const calls = new Map<string, StoredEvent[]>();
  for (const e of events) {
    const list = calls.get(e.callKey);
    if (list) list.push(e);
    else calls.set(e.callKey, [e]);
  }
  return calls;
}

/**
 * The URL event a payload file name stands for, for a source whose events
 * are named by their URL (HCC: call-saved-callback.json -> call-saved);
 * undefined for the others, whose bodies name their type.
 */
export function pathEventFromFileName(source: SourceName, name: string): string | undefined {
  const events = SOURCES[source].pathEvents;
  if (events === undefined) return undefined;
  const base = name.replace(/^.*[\\/]/, '').replace(/\.json$/i, '');
  return [...events].sort((a, b) => b.length - a.length).find((e) => base === e || base.startsWith(`${e}-`));
}
