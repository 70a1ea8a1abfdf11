import { parseConfig, type Config } from '../config';
import { SOURCES } from '../sources';
import type { SourceName } from '../core/event';
import type { StoredEvent } from '../core/event';

/**
 * StoredEvents built from bare vendor payloads, the way intake files them
 * (see the contract in src/mapping/types.ts): for `preview`, the example
 * cases beside the mappings, tests and the benchmark. Production events come
 * from the outbox, never from here.
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
  hccTimezone: string;
  /** UCONTACT_TIMEZONE (default UTC): uContact dates carry no zone. */
  ucontactTimezone?: string | undefined;
  /** First id to hand out; ids only need to be unique. */
  firstId?: number;
}


/** A fixed "received" instant for bodies that carry no usable time of their own. */
const SYNTHETIC_RECEIVED_AT = new Date('2024-01-01T00:00:00.000Z');

const configs = new Map<string, Config>();
function configFor(hccTimezone: string, ucontactTimezone = 'UTC'): Config {
  const key = `${hccTimezone}|${ucontactTimezone}`;
  let config = configs.get(key);
  if (!config) configs.set(key, (config = parseConfig({ HCC_TIMEZONE: hccTimezone, UCONTACT_TIMEZONE: ucontactTimezone })));
  return config;
}

/**
 * What intake derives from one body: the real source adapter's identify(),
 * fed the body as a vendor would post it (so preview and the examples file
 * events exactly as production does).
 */
export function identify(
  source: SourceName,
  payload: Record<string, unknown>,
  eventType: string | undefined,
  hccTimezone: string,
  receivedAt: Date = SYNTHETIC_RECEIVED_AT,
  ucontactTimezone?: string,
): { eventType: string; dedupeKey: string; callKey: string; vendorTime: Date | null; vendorTimeRaw: string | null } {
  const rawBody = JSON.stringify(payload);
  const headers: Record<string, string> = {};
  if (source === 'enreach' && eventType !== undefined) headers['x-benemen-event'] = eventType;
  const params: Record<string, string> = source === 'hcc' ? { event: eventType ?? 'unknown' } : {};
  const who = SOURCES[source].identify(
    { rawBody, json: payload, headers, params, query: new URLSearchParams(), receivedAt },
    configFor(hccTimezone, ucontactTimezone),
  );
  const type = source === 'hcc' || eventType === undefined ? who.eventType : eventType;
  return { ...who, eventType: type, callKey: who.callKey ?? `event:${who.dedupeKey}` };
}

export function syntheticEvents(source: SourceName, inputs: readonly SyntheticInput[], options: SyntheticOptions): StoredEvent[] {
  let id = options.firstId ?? 1;
  return inputs.map((input) => {
    const who = identify(source, input.payload, input.eventType, options.hccTimezone, input.receivedAt, options.ucontactTimezone);
    return {
      id: id++,
      source,
      eventType: who.eventType,
      dedupeKey: who.dedupeKey,
      callKey: who.callKey,
      vendorTime: who.vendorTime,
      vendorTimeRaw: who.vendorTimeRaw,
      receivedAt: input.receivedAt ?? who.vendorTime ?? SYNTHETIC_RECEIVED_AT,
      payload: input.payload,
      headers: keptHeaders(source, input.headers ?? {}),
    };
  });
}

/** The headers intake would store: the adapter's keptHeaders, names lower-cased (so preview reads what production reads). */
function keptHeaders(source: SourceName, headers: Record<string, string>): Record<string, string> {
  const kept = new Set(SOURCES[source].keptHeaders);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (kept.has(lower)) out[lower] = value;
  }
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

/** The HCC URL event a fixture file name stands for (call-saved-callback.json -> call-saved). */
export function hccEventFromFileName(name: string): string | undefined {
  const base = name.replace(/^.*[\\/]/, '').replace(/\.json$/i, '');
  // The URL events intake accepts for HCC, from its adapter: one list for both.
  return [...(SOURCES.hcc.pathEvents ?? [])].sort((a, b) => b.length - a.length).find((e) => base === e || base.startsWith(`${e}-`));
}
