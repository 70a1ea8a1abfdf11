import type { CrmRecord } from '../../core/crm-record';
import type { SyncError } from '../../core/errors';
import { isolationBudget, sendIsolating, type BatchAttempt } from './isolate';

/** Records split by CRM object, then into requests of at most `limit` (a batch endpoint carries one object). */
export function chunksByObject<P extends { record: CrmRecord }>(prepared: readonly P[], limit: number): P[][] {
  const byObject = new Map<string, P[]>();
  for (const p of prepared) {
    const list = byObject.get(p.record.object) ?? [];
    list.push(p);
    byObject.set(p.record.object, list);
  }
  const chunks: P[][] = [];
  for (const list of byObject.values()) {
    for (let i = 0; i < list.length; i += limit) chunks.push(list.slice(i, i + limit));
  }
  return chunks;
}

export interface SendChunksOptions<P, O> {
  /** Most records one request carries. */
  limit: number;
  /** One request for these records (all of one object): their outcomes in order, or the whole-request rejection. */
  send: (records: P[]) => Promise<BatchAttempt<P, O>>;
  /** The outcome of a record the CRM refused with the whole request. */
  failed: (record: P, error: SyncError) => O;
}

/**
 * Sends records by object and chunk, all chunks at once, each isolating the
 * records a whole-request rejection concerns (see isolate.ts). Outcomes are
 * added to `into` (a new map unless given).
 */
export async function sendChunks<P extends { record: CrmRecord }, O>(
  prepared: readonly P[],
  options: SendChunksOptions<P, O>,
  into: Map<P, O> = new Map(),
): Promise<Map<P, O>> {
  await Promise.all(
    chunksByObject(prepared, options.limit).map(async (chunk) => {
      const answers = await sendIsolating<P, O>(chunk, {
        send: options.send,
        failed: options.failed,
        maxExtraRequests: isolationBudget(chunk.length),
      });
      chunk.forEach((p, i) => {
        const outcome = answers[i];
        if (outcome !== undefined) into.set(p, outcome);
      });
    }),
  );
  return into;
}
