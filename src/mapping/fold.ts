import { type CallbackFieldName, type FieldKind } from './language-terms';
import type { CondFn, Scope } from './compile-env';
import { isCallbackStatus, normalize } from './normalize-field';
import type { CompiledField, CompiledRule, DeriveStep, SourcePlan } from './source-plan';
import { toNumber, toText } from './transforms';
import { activityTimeMs, isoFromMs } from '../core/time';
import { MappingError } from '../core/errors';
import { type JsonValue } from '../core/json';
import { emptyActivity, type CallActivity, type CallbackRequest } from '../core/activity';
import { type EventDisposition, type StoredEvent } from '../core/event';

/**
 * The fold: all events of one call become one activity.
 *
 * Order-independent and idempotent by construction:
 *  1. only events the file classifies as `sync` are read;
 *  2. duplicates (same dedupeKey) collapse to one (the lowest id);
 *  3. events are put in a total order computed from what is stored with
 *     them (vendor time, the file's rank of the event type, the time intake
 *     received them, dedupeKey), never from the order they are handed to the
 *     fold or their ids;
 *  4. every field is chosen from that order by a declared rule (last value,
 *     first, min, max, the last matching event).
 * The same set of events therefore gives the same activity whatever order it
 * arrived in and however often each event repeats.
 */

interface Ordered {
  event: StoredEvent;
  scope: Scope;
}

export function classifyWith(plan: SourcePlan, eventType: string): EventDisposition {
  return plan.dispositions.get(eventType) ?? plan.unknown;
}

/** The events the fold reads, deduplicated and in their content-defined order. */
export function orderEvents(plan: SourcePlan, events: readonly StoredEvent[]): StoredEvent[] {
  const byKey = new Map<string, StoredEvent>();
  for (const e of events) {
    if (classifyWith(plan, e.eventType) !== 'sync') continue;
    const seen = byKey.get(e.dedupeKey);
    if (seen === undefined || e.id < seen.id) byKey.set(e.dedupeKey, e);
  }
  const unranked = plan.rank.size;
  const keyed = [...byKey.values()].map((e) => ({
    e,
    // Events whose vendor time is missing or malformed sort first: they can
    // still fill gaps, but a timed event wins a "last value" choice.
    time: e.vendorTime ? e.vendorTime.getTime() : Number.NEGATIVE_INFINITY,
    rank: plan.rank.get(e.eventType) ?? unranked,
    received: e.receivedAt.getTime(),
  }));
  keyed.sort((a, b) => {
    for (const by of plan.sort) {
      const d = a[by] - b[by];
      if (d !== 0 && !Number.isNaN(d)) return d;
    }
    if (a.e.dedupeKey !== b.e.dedupeKey) return a.e.dedupeKey < b.e.dedupeKey ? -1 : 1;
    return a.e.id - b.e.id;
  });
  return keyed.map((k) => k.e);
}

export async function foldEvents(plan: SourcePlan, callKey: string, events: readonly StoredEvent[]): Promise<CallActivity> {
  for (const e of events) {
    if (e.source !== plan.source) {
      throw new MappingError(`event ${e.id} is from ${e.source}, not ${plan.source}`, { source: plan.source });
    }
  }
  const ordered: Ordered[] = orderEvents(plan, events).map((event) => ({ event, scope: { root: event.payload, event } }));

  const activity: CallActivity = {
    ...emptyActivity(plan.source, callKey),
    firstEventAt: firstEventAt(ordered),
    eventIds: ordered.map((o) => o.event.id),
  };
  const fields = activity as unknown as Record<string, unknown>;

  for (const field of plan.fields) {
    const value = await resolveField(plan, field, ordered);
    if (value === null) continue;
    if (field.target === 'custom') activity.custom[field.name] = value as JsonValue;
    else fields[field.name] = value;
  }

  const callbackValues: Record<string, unknown> = {};
  for (const field of plan.callback) callbackValues[field.name] = await resolveField(plan, field, ordered);
  activity.callback = makeCallback(callbackValues);

  activity.final = await isFinal(plan, ordered);

  const view = { root: activity, event: null };
  for (const step of plan.derive) {
    await applyDerive(plan, step, activity, view);
  }

  // The contract: the label is the raw code when no table gave one.
  if (activity.dispositionLabel === null && activity.dispositionCode !== null) activity.dispositionLabel = activity.dispositionCode;
  return activity;
}

/**
 * The earliest of the folded events' times (vendor time, else received
 * time). A minimum over the deduplicated set, so it does not depend on the
 * arrival order either.
 */
function firstEventAt(ordered: readonly Ordered[]): string | null {
  let earliest: number | null = null;
  for (const { event } of ordered) {
    const t = (event.vendorTime ?? event.receivedAt).getTime();
    if (Number.isFinite(t) && (earliest === null || t < earliest)) earliest = t;
  }
  return earliest === null ? null : isoFromMs(earliest);
}

function makeCallback(values: Record<string, unknown>): CallbackRequest | null {
  const dueAt = values.dueAt;
  if (typeof dueAt !== 'string') return null;
  return {
    dueAt,
    number: typeof values.number === 'string' ? values.number : null,
    notes: typeof values.notes === 'string' ? values.notes : null,
    agentEmail: typeof values.agentEmail === 'string' ? values.agentEmail : null,
    status: isCallbackStatus(values.status) ? values.status : 'open',
  };
}

async function isFinal(plan: SourcePlan, ordered: readonly Ordered[]): Promise<boolean> {
  for (const o of ordered) {
    if (!(await anyOf(plan.final, o.scope))) continue;
    if (await anyOf(plan.except, o.scope)) continue;
    return true;
  }
  return false;
}

async function anyOf(conds: readonly CondFn[], scope: Scope): Promise<boolean> {
  for (const c of conds) {
    const r = c(scope);
    if (r instanceof Promise ? await r : r) return true;
  }
  return false;
}

async function applyDerive(plan: SourcePlan, step: DeriveStep, activity: CallActivity, view: Scope): Promise<void> {
  const current =
    step.target === 'custom'
      ? (activity.custom[step.name] ?? null)
      : step.target === 'callback'
        ? activity.callback === null
          ? null
          : activity.callback[step.name as CallbackFieldName]
        : (activity as unknown as Record<string, unknown>)[step.name];
  if (current !== null && current !== undefined) return;
  if (step.target === 'callback' && activity.callback === null && step.name !== 'dueAt') return;
  const raw = await evaluate(plan, step.name, step.line, () => step.value(view));
  const value = normalize(plan, step.kind, step.target === 'custom' ? `custom.${step.name}` : step.name, step.line, raw);
  if (value === null) return;
  if (step.target === 'custom') activity.custom[step.name] = value as JsonValue;
  else if (step.target === 'callback') {
    const cb: CallbackRequest = activity.callback ?? { dueAt: '', number: null, notes: null, agentEmail: null, status: 'open' };
    (cb as unknown as Record<string, unknown>)[step.name] = value;
    activity.callback = cb;
  } else (activity as unknown as Record<string, unknown>)[step.name] = value;
}

async function evaluate(plan: SourcePlan, field: string, line: number, run: () => unknown): Promise<unknown> {
  try {
    const r = run();
    return r instanceof Promise ? await r : r;
  } catch (err) {
    throw withField(err, plan, field, line);
  }
}

function withField(err: unknown, plan: SourcePlan, field: string, line: number): MappingError {
  if (err instanceof MappingError) {
    return err.details.field ? err : new MappingError(err.message, { ...err.details, field });
  }
  return new MappingError(`${field}: ${(err as Error).message ?? String(err)}`, { source: plan.source, file: plan.file, line, field });
}

async function resolveField(plan: SourcePlan, field: CompiledField, ordered: readonly Ordered[]): Promise<unknown> {
  const label = field.target === 'activity' ? field.name : `${field.target}.${field.name}`;
  for (const rule of field.rules) {
    const picked = await pick(plan, field, label, rule, ordered);
    if (picked.matched) return picked.value;
  }
  return null;
}

/**
 * One rule's choice. A rule "matches" when it yields a value (for
 * lastEvent: when any event passes its filters, even with an empty value),
 * and then later rules of the field are not consulted.
 */
async function pick(
  plan: SourcePlan,
  field: CompiledField,
  label: string,
  rule: CompiledRule,
  ordered: readonly Ordered[],
): Promise<{ matched: boolean; value: unknown }> {
  const read = async (o: Ordered): Promise<{ applies: boolean; value: unknown }> => {
    if (rule.events !== null && !rule.events.has(o.event.eventType)) return { applies: false, value: null };
    if (rule.when !== null) {
      const ok = await evaluate(plan, label, field.line, () => rule.when?.(o.scope));
      if (!ok) return { applies: false, value: null };
    }
    const raw = await evaluate(plan, label, field.line, () => rule.value(o.scope));
    return { applies: true, value: normalize(plan, field.kind, label, field.line, raw) };
  };

  switch (rule.merge) {
    case 'last':
      for (let i = ordered.length - 1; i >= 0; i--) {
        const o = ordered[i];
        if (!o) continue;
        const r = await read(o);
        if (r.value !== null) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'first':
      for (const o of ordered) {
        const r = await read(o);
        if (r.value !== null) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'lastEvent':
      for (let i = ordered.length - 1; i >= 0; i--) {
        const o = ordered[i];
        if (!o) continue;
        const r = await read(o);
        if (r.applies) return { matched: true, value: r.value };
      }
      return { matched: false, value: null };
    case 'min':
    case 'max': {
      let best: unknown = null;
      for (const o of ordered) {
        const r = await read(o);
        if (r.value === null) continue;
        if (best === null || compare(field.kind, r.value, best) * (rule.merge === 'min' ? -1 : 1) > 0) best = r.value;
      }
      return { matched: best !== null, value: best };
    }
  }
}

function compare(kind: FieldKind, a: unknown, b: unknown): number {
  if (kind === 'time') return (activityTimeMs(a) ?? 0) - (activityTimeMs(b) ?? 0);
  const na = toNumber(a);
  const nb = toNumber(b);
  if (na !== null && nb !== null) return na - nb;
  const ta = toText(a) ?? '';
  const tb = toText(b) ?? '';
  return ta < tb ? -1 : ta > tb ? 1 : 0;
}
