import { type CrmTarget, type WriteItem, type WriteResult } from '../../src/crm/engine/target-contract';
import { SyncError } from '../../src/core/errors';
import type { CrmRecord } from '../../src/core/crm-record';

/**
 * A CRM target at the interface level, for the worker's own mechanics
 * (claiming, ordering, retry schedule, shutdown). It keeps records by
 * external id like an upsert would; faults are queued per write call.
 * The real targets are tested against HTTP-level fakes in src/crm/.
 */
export class MemoryTarget implements CrmTarget {
  readonly name = 'dry-run' as const;
  readonly needs = ['salesforce'] as const;
  readonly records = new Map<string, { id: string; fields: CrmRecord['fields']; writes: number }>();
  /** Every write call's external ids, to check concurrency and batching. */
  readonly batches: string[][] = [];
  private readonly faults: Array<(items: WriteItem[]) => Promise<WriteResult[] | undefined> | WriteResult[] | undefined> = [];
  private paused: Date | undefined;
  private nextId = 1;
  inFlight = 0;
  maxInFlightSeen = 0;
  /** External ids being written right now, to catch two syncs of one call at once. */
  readonly writing = new Set<string>();
  concurrentSameCall = 0;

  constructor(readonly maxBatch = 200) {}

  /** The next write runs `fault` first; returning results (or throwing) replaces the normal write. */
  inject(fault: (items: WriteItem[]) => Promise<WriteResult[] | undefined> | WriteResult[] | undefined): void {
    this.faults.push(fault);
  }

  pauseUntil(until: Date | undefined): void {
    this.paused = until;
  }

  pausedUntil(): Date | undefined {
    return this.paused;
  }

  async write(items: WriteItem[]): Promise<WriteResult[]> {
    this.batches.push(items.map((i) => i.externalId));
    this.inFlight += 1;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlight);
    for (const item of items) {
      if (this.writing.has(item.externalId)) this.concurrentSameCall += 1;
      this.writing.add(item.externalId);
    }
    try {
      const fault = this.faults.shift();
      if (fault) {
        const replaced = await fault(items);
        if (replaced) return replaced;
      }
      return items.map((item) => this.apply(item));
    } finally {
      this.inFlight -= 1;
      for (const item of items) this.writing.delete(item.externalId);
    }
  }

  private apply(item: WriteItem): WriteResult {
    const ids: Record<string, string> = {};
    let created = false;
    for (const record of item.records.salesforce ?? []) {
      const existing = this.records.get(record.externalId);
      if (existing) {
        existing.fields = record.fields;
        existing.writes += 1;
        ids[record.externalId] = existing.id;
      } else {
        const id = `00T${String(this.nextId++).padStart(15, '0')}`;
        this.records.set(record.externalId, { id, fields: record.fields, writes: 1 });
        ids[record.externalId] = id;
        if (record.kind === 'activity') created = true;
      }
    }
    return { ok: true, ids, created, sent: (item.records.salesforce ?? []).map((r) => ({ externalId: r.externalId, fields: r.fields })) };
  }
}

export function transient(message = 'Service Unavailable'): SyncError {
  return new SyncError('transient', message, { httpStatus: 503, crmResponse: { message } });
}
