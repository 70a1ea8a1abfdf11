import type { CallActivity } from '../core/activity';
import type { CrmKind, CrmRecord } from '../core/crm-record';
import { MappingError } from '../core/errors';
import type { EventDisposition, SourceName, StoredEvent } from '../core/event';
import { buildRecords, type CrmPlan } from './crm-records';
import { classifyWith, foldEvents } from './fold';
import type { MappingSet } from './mapping-set';
import type { SourcePlan } from './source-plan';

/**
 * The loaded, compiled mappings. Immutable: a reload builds a new one, so a
 * fold in progress keeps the mappings it started with.
 */
export class LoadedMappings implements MappingSet {
  private readonly dispositions: ReadonlyMap<SourceName, SourcePlan>;

  constructor(
    private readonly plans: ReadonlyMap<SourceName, { plan: SourcePlan; crm: ReadonlyMap<CrmKind, CrmPlan> }>,
    readonly files: readonly string[],
  ) {
    this.dispositions = new Map([...plans].map(([s, p]) => [s, p.plan]));
  }

  /** O(1): one map lookup per webhook. */
  classify(source: SourceName, eventType: string): EventDisposition {
    const plan = this.dispositions.get(source);
    // Every source has a plan (the loader requires every source's file); be safe anyway.
    return plan ? classifyWith(plan, eventType) : 'ignore';
  }

  fold(source: SourceName, callKey: string, events: StoredEvent[]): Promise<CallActivity> {
    return foldEvents(this.plan(source), callKey, events);
  }

  toCrm(activity: CallActivity, crm: CrmKind): Promise<CrmRecord[]> {
    const plan = this.plans.get(activity.source)?.crm.get(crm);
    if (!plan) return Promise.reject(new MappingError(`no ${crm} mapping for ${activity.source}`, { source: activity.source }));
    return buildRecords(plan, activity);
  }

  /** The compiled source plan (for the CLI and tests). */
  plan(source: SourceName): SourcePlan {
    const p = this.plans.get(source);
    if (!p) throw new MappingError(`no mapping for source ${source}`, { source });
    return p.plan;
  }

  /** Event types a source file names, by what intake does with them. */
  eventTypes(source: SourceName): { sync: string[]; ignore: string[]; drop: string[]; unknown: EventDisposition } {
    const plan = this.plan(source);
    const out = { sync: [] as string[], ignore: [] as string[], drop: [] as string[], unknown: plan.unknown };
    for (const [type, d] of plan.dispositions) out[d].push(type);
    return out;
  }
}
