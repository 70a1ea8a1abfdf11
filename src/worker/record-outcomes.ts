import type { CrmTarget } from '../crm/engine/target-contract';
import { scrubPhones, type Logger } from '../log';
import type { Metrics } from '../metrics';
import type { ClaimedCall } from '../outbox/claim-calls';
import type { CompletionResult, SyncCompletion } from '../outbox/complete-syncs';

/**
 * Metrics and log lines once the outcomes are committed (a completion a
 * lost lease dropped did not happen). One line per call that did not sync,
 * at warn when it gave up; a whole batch failing the same way (an outage)
 * logs once instead of once per call.
 */
export function recordOutcomes(
  deps: { metrics: Metrics; target: CrmTarget; log: Logger; now: () => Date },
  completions: SyncCompletion[],
  written: CompletionResult[],
  batch: Array<{ call: ClaimedCall }>,
): void {
  const { metrics, target, log } = deps;
  const labels = { target: target.name };
  const committed = new Map(written.map((w) => [w.id, w]));
  const calls = new Map(batch.map((b) => [b.call.id, b.call]));
  if (written.length < completions.length) {
    log.warn({ expected: completions.length, written: written.length }, 'some leases expired before completion; another worker owns those calls');
  }
  const unsynced: Array<{ completion: SyncCompletion; status: string }> = [];
  for (const completion of completions) {
    const row = committed.get(completion.id);
    if (!row) continue;
    if (completion.outcome === 'synced') {
      metrics.syncsSucceeded.inc(labels);
      const call = calls.get(completion.id);
      if (call) metrics.syncLatency.observe(labels, Math.max(0, (deps.now().getTime() - call.lastEventAt.getTime()) / 1000));
      continue;
    }
    if (completion.outcome === 'released') continue;
    const gaveUp = row.status === 'failed';
    metrics.syncsFailed.inc({ ...labels, kind: completion.errorKind ?? 'unknown', outcome: gaveUp ? 'failed' : 'retry' });
    if (!gaveUp) metrics.syncRetries.inc({ ...labels, scope: 'durable' });
    unsynced.push({ completion, status: row.status });
  }
  const first = unsynced[0]?.completion;
  const sameForAll = first !== undefined && unsynced.length > 1 && unsynced.every((u) => u.completion.error === first.error && u.status === unsynced[0]?.status);
  if (sameForAll) {
    log.warn(
      { target: target.name, calls: unsynced.length, status: unsynced[0]?.status, kind: first.errorKind, httpStatus: first.httpStatus, error: scrubPhones(first.error ?? '') },
      unsynced[0]?.status === 'failed' ? 'sync failed for a batch of calls; giving up on them' : 'sync failed for a batch of calls; rescheduled',
    );
    return;
  }
  for (const { completion: c, status } of unsynced) {
    const fields = {
      callId: c.id,
      source: c.source,
      attempt: c.attempt,
      kind: c.errorKind,
      httpStatus: c.httpStatus,
      error: scrubPhones(c.error ?? ''),
      ...(status === 'pending' && c.nextAttemptAt ? { nextAttemptAt: c.nextAttemptAt.toISOString() } : {}),
    };
    if (status === 'failed') log.warn(fields, 'sync failed; giving up on the call until it is replayed');
    else log.info(fields, 'sync failed; rescheduled');
  }
}
