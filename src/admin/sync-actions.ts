import type { Database } from '../db/client';
import { AppError, MappingError, errorMessage } from '../core/errors';
import type { CrmKind } from '../core/crm-record';
import type { StoredEvent } from '../core/event';
import type { JsonValue } from '../core/json';
import type { Logger } from '../log';
import type { MappingSet } from '../mapping/mapping-set';
import { BulkReplayError, replayMatching } from '../outbox/bulk-replay';
import { type ReplayFilter } from '../outbox/sync-filter';
import { type EventTypeRef } from '../outbox/reclassify-ignored';
import { matchReplay } from '../outbox/replay-dry-run';
import { loadReplayCandidate, type ReplayCandidate } from '../outbox/replay-candidate';
import { replayCall } from '../outbox/replay-call';
import { discardCall } from '../outbox/discard-call';
import { actorLogger, logAction, updateAuditDetails, writeAudit, type AuditAction } from './audit';
import type { Actor } from './auth';
import {
  DRY_RUN_SAMPLE,
  type BulkReplayInput,
  type BulkReplayResult,
  type DiscardResult,
  type Preview,
  type ReplayOneResult,
  type ResolvedFilter,
} from './schemas';
import { readWindow } from './time-bounds';

export interface SyncActionDeps {
  database: Database;
  logger: Logger;
  /** The mappings a replay folds with and reclassifies ignored events by (the CLI loads them from MAPPINGS_DIR). */
  mappings?: { current(): MappingSet } | undefined;
  /**
   * The CRMs the configured target writes to: a single replay also builds
   * their records, so a CRM-side mapping error is caught before queueing.
   */
  crmKinds?: readonly CrmKind[] | undefined;
  now: () => Date;
}

type Fold = { ok: true; activity: JsonValue } | { ok: false; error: string };

/**
 * The admin's actions on calls: replay one (folded now, refused when the
 * current mappings fail on it), discard one, and replay in bulk. Each is
 * audited, refusals included; the SQL is in src/outbox/ (replay-call.ts, discard-call.ts, bulk-replay.ts).
 */
export class SyncActions {
  constructor(private readonly deps: SyncActionDeps) {}

  /** What the current mappings make of the call, for the detail view (undefined: the call is gone). */
  async preview(id: number, actor: Actor): Promise<Preview | undefined> {
    const candidate = await loadReplayCandidate(this.deps.database, id);
    return candidate ? this.asPreview((await this.foldNow(candidate, actor)).fold) : undefined;
  }

  /**
   * Folds the call again with the current mappings and queues it now. When
   * the mappings still fail on it, nothing is queued and the error says why
   * (mapping_failed): replaying it would only fail again. Ignored events
   * whose type the current mappings sync are folded in and made pending.
   */
  async replayOne(id: number, actor: Actor): Promise<ReplayOneResult> {
    const { database } = this.deps;
    const subject = `call_sync:${id}`;
    const candidate = await loadReplayCandidate(database, id);
    if (!candidate) throw syncNotFound(id);
    if (candidate.leased) {
      throw await this.refuse('sync.replay', subject, actor, 'conflict', `sync ${id} is being written to the CRM right now; replay it again once that attempt has finished`, 'busy');
    }

    const { fold: folded, reclassify } = await this.foldNow(candidate, actor);
    if (!folded.ok) {
      if (folded.empty) {
        throw await this.refuse(
          'sync.replay',
          subject,
          actor,
          'conflict',
          `sync ${id} has no events the current mappings sync (retention removed them, or their types are ignored), so there is nothing to replay`,
          'empty',
        );
      }
      throw await this.refuse(
        'sync.replay',
        subject,
        actor,
        'mapping_failed',
        `the current mappings cannot fold sync ${id}, so it was not queued: ${folded.error}. Fix the mapping and replay again.`,
        'mapping',
      );
    }

    const outcome = await database.transaction(async (tx) => {
      const result = await replayCall(tx, id, folded.activity, reclassify);
      if (result.outcome === 'done') {
        await writeAudit(tx, {
          action: 'sync.replay',
          subject,
          actor,
          details: {
            outcome: 'queued',
            previousStatus: result.previousStatus,
            previousAttempts: result.previousAttempts,
            eventsRequeued: result.events,
            ...(result.reclassified > 0 ? { eventsReclassified: result.reclassified } : {}),
          },
        });
      }
      return result;
    });
    if (outcome.outcome === 'missing') throw syncNotFound(id);
    if (outcome.outcome === 'busy') {
      throw await this.refuse(
        'sync.replay',
        subject,
        actor,
        'conflict',
        `sync ${id} was picked up by a worker meanwhile and is being written to the CRM; replay it again once that attempt has finished`,
        'busy',
      );
    }
    this.log(actor, 'sync.replay', subject, { previousStatus: outcome.previousStatus, eventsReclassified: outcome.reclassified });
    return {
      id,
      status: 'pending',
      previousStatus: outcome.previousStatus,
      eventsRequeued: outcome.events,
      eventsReclassified: outcome.reclassified,
      activity: folded.activity,
    };
  }

  async discardOne(id: number, actor: Actor): Promise<DiscardResult> {
    const subject = `call_sync:${id}`;
    const outcome = await this.deps.database.transaction(async (tx) => {
      const result = await discardCall(tx, id);
      if (result.outcome === 'done') {
        await writeAudit(tx, {
          action: 'sync.discard',
          subject,
          actor,
          details: { outcome: 'discarded', previousStatus: result.previousStatus, eventsDiscarded: result.events },
        });
      }
      return result;
    });
    switch (outcome.outcome) {
      case 'missing':
        throw syncNotFound(id);
      case 'busy':
        throw await this.refuse('sync.discard', subject, actor, 'conflict', `sync ${id} is being written to the CRM right now; discard it once that attempt has finished`, 'busy');
      case 'synced':
        throw await this.refuse('sync.discard', subject, actor, 'conflict', `sync ${id} is already synced to the CRM; there is nothing to discard`, 'synced');
      case 'done':
        this.log(actor, 'sync.discard', subject, { previousStatus: outcome.previousStatus });
        return { id, status: 'discarded', previousStatus: outcome.previousStatus, eventsDiscarded: outcome.events };
    }
  }

  /**
   * Replays every call matching the filter, or with dryRun only says which.
   * Bulk replay does not fold: each call is folded by the worker when it is
   * written, with the mappings current then. Ignored events of the replayed
   * calls whose type the current mappings sync are made pending.
   *
   * The audit row is written in the first batch's transaction and updated in
   * every later one, so it always says exactly what has been committed.
   */
  async replayBulk(input: BulkReplayInput, actor: Actor): Promise<BulkReplayResult> {
    const window = readWindow(input.since, input.until, this.deps.now());
    const filter: ReplayFilter = { status: input.status, source: input.source, since: window.since, until: window.until };
    const resolved: ResolvedFilter = {
      status: input.status,
      source: input.source ?? null,
      since: window.since?.toISOString() ?? null,
      until: window.until?.toISOString() ?? null,
    };
    const given: Record<string, JsonValue> = {};
    for (const key of ['status', 'source', 'since', 'until'] as const) {
      const value = input[key];
      if (value !== undefined) given[key] = value;
    }
    const auditFilter = { ...resolved, given };

    if (input.dryRun) {
      const match = await matchReplay(this.deps.database, filter, DRY_RUN_SAMPLE);
      await writeAudit(this.deps.database, {
        action: 'syncs.replay.dry_run',
        subject: null,
        actor,
        details: { filter: auditFilter, count: match.count, skipped: match.skipped },
      });
      return {
        dryRun: true,
        filter: resolved,
        count: match.count,
        skipped: match.skipped,
        calls: match.sample.map((c) => ({ ...c, updatedAt: c.updatedAt.toISOString() })),
        truncated: match.count > match.sample.length,
      };
    }

    let auditId: number | undefined;
    const audit = async (db: Parameters<typeof writeAudit>[0], details: Record<string, JsonValue>) => {
      // A batch that rolled back took its INSERT with it: then the row is written anew.
      if (auditId !== undefined && (await updateAuditDetails(db, auditId, actor, details))) return;
      auditId = await writeAudit(db, { action: 'syncs.replay', subject: null, actor, details });
    };
    const mappings = this.deps.mappings?.current();
    try {
      const result = await replayMatching(this.deps.database, filter, {
        ...(mappings ? { reclassify: (types: EventTypeRef[]) => types.filter((t) => mappings.classify(t.source, t.eventType) === 'sync') } : {}),
        inBatch: (tx, progress) =>
          audit(tx, {
            filter: auditFilter,
            outcome: progress.done ? 'done' : 'running',
            count: progress.count,
            skipped: progress.skipped,
            eventsRequeued: progress.events,
            eventsReclassified: progress.reclassified,
            batches: progress.batches,
          }),
      });
      this.log(actor, 'syncs.replay', null, { filter: resolved, count: result.count, skipped: result.skipped, eventsReclassified: result.reclassified });
      return { dryRun: false, filter: resolved, count: result.count, skipped: result.skipped, eventsReclassified: result.reclassified };
    } catch (err) {
      if (!(err instanceof BulkReplayError)) throw err;
      // The batches before the failure are committed (and their row says so); the row now also says the run stopped.
      const partial = err.partial;
      await audit(this.deps.database, {
        filter: auditFilter,
        outcome: 'interrupted',
        count: partial.count,
        skipped: partial.skipped,
        eventsRequeued: partial.events,
        eventsReclassified: partial.reclassified,
        batches: partial.batches,
        error: errorMessage(err.cause),
      }).catch((auditErr: unknown) => this.logger(actor).error({ err: auditErr }, 'could not audit an interrupted bulk replay'));
      throw err;
    }
  }

  private asPreview(fold: Fold & { empty?: boolean }): Preview {
    return fold.ok ? { ok: true, activity: fold.activity } : { ok: false, error: fold.error };
  }

  /**
   * The fold the worker would do after a replay, with one snapshot of the
   * mappings: the call's events plus its ignored events whose type is now
   * synced (`reclassify`: those types), and the CRM records the target needs.
   */
  private async foldNow(
    candidate: ReplayCandidate,
    actor: Actor,
  ): Promise<{ fold: Fold & { empty?: boolean }; reclassify: EventTypeRef[] }> {
    if (!this.deps.mappings) return { fold: { ok: false, error: 'this process has no mappings loaded' }, reclassify: [] };
    const mappings = this.deps.mappings.current();
    const reclassified = candidate.ignored.filter((e) => mappings.classify(candidate.source, e.eventType) === 'sync');
    const reclassify = [...new Set(reclassified.map((e) => e.eventType))].map((eventType) => ({ source: candidate.source, eventType }));
    const events: StoredEvent[] = [...candidate.events, ...reclassified].sort((a, b) => a.id - b.id);
    if (!events.some((e) => mappings.classify(candidate.source, e.eventType) === 'sync')) {
      return { fold: { ok: false, empty: true, error: 'the call has no events the current mappings sync' }, reclassify };
    }
    try {
      const activity = await mappings.fold(candidate.source, candidate.callKey, events);
      for (const crm of this.deps.crmKinds ?? []) await mappings.toCrm(activity, crm);
      return { fold: { ok: true, activity: activity as unknown as JsonValue }, reclassify };
    } catch (err) {
      // Anything the mapping layer throws fails the call in the worker too; a non-MappingError is worth a log line.
      if (!(err instanceof MappingError)) this.logger(actor).warn({ err, source: candidate.source }, 'mapping threw a non-MappingError');
      return { fold: { ok: false, error: errorMessage(err) }, reclassify };
    }
  }

  /** Audits a refusal and answers the error to throw. */
  private async refuse(
    action: AuditAction,
    subject: string,
    actor: Actor,
    code: ActionRefused['code'],
    message: string,
    reason: ActionRefused['reason'],
  ): Promise<ActionRefused> {
    const error = new ActionRefused(code, message, reason);
    await writeAudit(this.deps.database, { action, subject, actor, details: { outcome: 'refused', code: error.code, reason: error.message } });
    return error;
  }

  private logger(actor: Actor): Logger {
    return actorLogger(this.deps.logger, actor);
  }

  private log(actor: Actor, action: AuditAction, subject: string | null, details: Record<string, unknown>): void {
    logAction(this.deps.logger, actor, action, subject, details);
  }
}

/** An action the admin asked for and we declined, with why in a form the page can act on. */
export class ActionRefused extends AppError {
  declare readonly code: 'conflict' | 'mapping_failed';

  constructor(
    code: 'conflict' | 'mapping_failed',
    message: string,
    readonly reason: 'mapping' | 'busy' | 'synced' | 'empty',
  ) {
    super(code, message);
    this.name = 'ActionRefused';
  }
}

export function syncNotFound(id: number): AppError {
  return new AppError('not_found', `no sync with id ${id}`);
}
