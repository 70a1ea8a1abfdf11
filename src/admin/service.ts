import type { CrmTarget } from '../crm/types';
import type { Database } from '../db/client';
import { AppError, errorMessage } from '../errors';
import type { Logger } from '../log';
import { MappingError, type JsonValue, type MappingSet } from '../mapping/types';
import {
  BulkReplayError,
  discardCall,
  loadReplayCandidate,
  matchReplay,
  replayCall,
  replayMatching,
  type ReplayFilter,
} from '../outbox/replay';
import type { SourceName } from '../sources/types';
import { recentAudit, writeAudit, type AuditAction } from './audit';
import type { Actor } from './auth';
import {
  DRY_RUN_SAMPLE,
  type AuditEntry,
  type BulkReplayInput,
  type BulkReplayResult,
  type DiscardResult,
  type ListQuery,
  type Preview,
  type ReplayOneResult,
  type ResolvedFilter,
  type Summary,
  type SyncDetail,
  type SyncList,
} from './schemas';
import { listSyncs, loadEvent, loadSummary, loadSync } from './store';
import { TIME_BOUND_HELP, parseTimeBound } from './time';

export interface AdminServiceDeps {
  database: Database;
  logger: Logger;
  /** Absent in the CLI, which only bulk-replays (the worker folds those calls). */
  mappings?: { current(): MappingSet } | undefined;
  /** When given, a single replay also builds the CRM records this target needs, so a CRM-side mapping error is caught too. */
  target?: CrmTarget | undefined;
  now?: () => Date;
}

/**
 * What the admin can do, shared by the API, the page and the CLI so all
 * three behave (and audit) the same. Failures are AppErrors with the code
 * the API answers with.
 */
export class AdminService {
  private readonly now: () => Date;

  constructor(private readonly deps: AdminServiceDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async listSyncs(query: ListQuery): Promise<SyncList> {
    const window = this.resolveWindow(query.since, query.until);
    return listSyncs(
      this.deps.database,
      { status: query.status, source: query.source, since: window.since, until: window.until, q: query.q },
      { cursor: query.cursor, limit: query.limit },
    );
  }

  async getSync(id: number): Promise<SyncDetail> {
    const record = await loadSync(this.deps.database, id);
    if (!record) throw notFound(id);
    const candidate = await loadReplayCandidate(this.deps.database, id);
    const preview: Preview = candidate ? await this.preview(candidate) : { ok: false, error: 'the call is gone' };
    return {
      sync: {
        ...record.summary,
        version: record.version,
        lockedBy: record.lockedBy,
        lastResponse: record.lastResponse,
        activity: record.activity,
        crmPayload: record.crmPayload,
      },
      preview,
      events: record.events,
      eventsTruncated: record.eventsTruncated,
      attempts: record.attempts,
      attemptsTruncated: record.attemptsTruncated,
    };
  }

  async getEvent(id: number) {
    const event = await loadEvent(this.deps.database, id);
    if (!event) throw new AppError('not_found', `no event with id ${id}`);
    return event;
  }

  summary(): Promise<Summary> {
    return loadSummary(this.deps.database);
  }

  recentAudit(limit: number): Promise<AuditEntry[]> {
    return recentAudit(this.deps.database, limit);
  }

  /**
   * Folds the call again with the current mappings and queues it now. When
   * the mappings still fail on it, nothing is queued and the error says why
   * (mapping_failed): replaying it would only fail again.
   */
  async replayOne(id: number, actor: Actor): Promise<ReplayOneResult> {
    const { database } = this.deps;
    const subject = `call_sync:${id}`;
    const candidate = await loadReplayCandidate(database, id);
    if (!candidate) throw notFound(id);
    if (candidate.leased) {
      const error = new ActionRefused('conflict', `sync ${id} is being written to the CRM right now; replay it again once that attempt has finished`, 'busy');
      await this.refused('sync.replay', subject, actor, error);
      throw error;
    }

    const folded = await this.fold(candidate);
    if (!folded.ok) {
      const error = new ActionRefused(
        'mapping_failed',
        `the current mappings cannot fold sync ${id}, so it was not queued: ${folded.error}. Fix the mapping and replay again.`,
        'mapping',
      );
      await this.refused('sync.replay', subject, actor, error);
      throw error;
    }

    const outcome = await database.transaction(async (tx) => {
      const result = await replayCall(tx, id, folded.activity);
      if (result.outcome === 'done') {
        await writeAudit(tx, {
          action: 'sync.replay',
          subject,
          actor,
          details: { outcome: 'queued', previousStatus: result.previousStatus, previousAttempts: result.previousAttempts, eventsRequeued: result.events },
        });
      }
      return result;
    });
    if (outcome.outcome === 'missing') throw notFound(id);
    if (outcome.outcome === 'busy') {
      const error = new ActionRefused(
        'conflict',
        `sync ${id} was picked up by a worker meanwhile and is being written to the CRM; replay it again once that attempt has finished`,
        'busy',
      );
      await this.refused('sync.replay', subject, actor, error);
      throw error;
    }
    this.log(actor, 'sync.replay', subject, { previousStatus: outcome.previousStatus });
    return { id, status: 'pending', previousStatus: outcome.previousStatus, eventsRequeued: outcome.events, activity: folded.activity };
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
        throw notFound(id);
      case 'busy': {
        const error = new ActionRefused('conflict', `sync ${id} is being written to the CRM right now; discard it once that attempt has finished`, 'busy');
        await this.refused('sync.discard', subject, actor, error);
        throw error;
      }
      case 'synced': {
        const error = new ActionRefused('conflict', `sync ${id} is already synced to the CRM; there is nothing to discard`, 'synced');
        await this.refused('sync.discard', subject, actor, error);
        throw error;
      }
      case 'done':
        this.log(actor, 'sync.discard', subject, { previousStatus: outcome.previousStatus });
        return { id, status: 'discarded', previousStatus: outcome.previousStatus, eventsDiscarded: outcome.events };
    }
  }

  /**
   * Replays every call matching the filter, or with dryRun only says which.
   * Bulk replay does not fold: each call is folded by the worker when it is
   * written, with the mappings current then.
   */
  async replayBulk(input: BulkReplayInput, actor: Actor): Promise<BulkReplayResult> {
    const window = this.resolveWindow(input.since, input.until);
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

    try {
      const result = await replayMatching(this.deps.database, filter);
      await writeAudit(this.deps.database, {
        action: 'syncs.replay',
        subject: null,
        actor,
        details: { filter: auditFilter, count: result.count, skipped: result.skipped, eventsRequeued: result.events, batches: result.batches },
      });
      this.log(actor, 'syncs.replay', null, { filter: resolved, count: result.count, skipped: result.skipped });
      return { dryRun: false, filter: resolved, count: result.count, skipped: result.skipped };
    } catch (err) {
      if (!(err instanceof BulkReplayError)) throw err;
      // The batches before the failure are committed: the trail must say so.
      await writeAudit(this.deps.database, {
        action: 'syncs.replay',
        subject: null,
        actor,
        details: { filter: auditFilter, count: err.partial.count, skipped: err.partial.skipped, outcome: 'interrupted', error: errorMessage(err.cause) },
      }).catch((auditErr: unknown) => this.deps.logger.error({ err: auditErr }, 'could not audit an interrupted bulk replay'));
      throw err;
    }
  }

  /** For the page's login and logout. */
  async recordSession(action: 'session.login' | 'session.login_failed' | 'session.logout', actor: Actor): Promise<void> {
    await writeAudit(this.deps.database, { action, subject: null, actor, details: {} });
    this.log(actor, action, null, {});
  }

  /** since/until to instants ("2h" is resolved against now, once, so every batch of a replay sees the same window). */
  resolveWindow(since: string | undefined, until: string | undefined): { since?: Date; until?: Date } {
    const now = this.now();
    const parse = (field: string, value: string | undefined): Date | undefined => {
      if (value === undefined) return undefined;
      const at = parseTimeBound(value, now);
      if (!at) throw new AppError('validation_failed', `${field}: ${TIME_BOUND_HELP}`);
      return at;
    };
    const from = parse('since', since);
    const to = parse('until', until);
    if (from && to && from >= to) {
      throw new AppError('validation_failed', `until: must be later than since (${from.toISOString()} is not before ${to.toISOString()})`);
    }
    return { ...(from ? { since: from } : {}), ...(to ? { until: to } : {}) };
  }

  private async preview(candidate: { id: number; source: SourceName; callKey: string; events: Parameters<MappingSet['fold']>[2] }): Promise<Preview> {
    const folded = await this.fold(candidate);
    return folded.ok ? { ok: true, activity: folded.activity } : folded;
  }

  /** The fold the worker would do now, and the CRM records the target would need. */
  private async fold(candidate: {
    source: SourceName;
    callKey: string;
    events: Parameters<MappingSet['fold']>[2];
  }): Promise<{ ok: true; activity: JsonValue } | { ok: false; error: string }> {
    if (candidate.events.length === 0) return { ok: false, error: 'the call has no events to fold' };
    if (!this.deps.mappings) return { ok: false, error: 'this process has no mappings loaded' };
    const mappings = this.deps.mappings.current();
    try {
      const activity = await mappings.fold(candidate.source, candidate.callKey, candidate.events);
      for (const crm of this.deps.target?.needs ?? []) await mappings.toCrm(activity, crm);
      return { ok: true, activity: activity as unknown as JsonValue };
    } catch (err) {
      // Anything the mapping layer throws fails the call in the worker too; a non-MappingError is worth a log line.
      if (!(err instanceof MappingError)) this.deps.logger.warn({ err, source: candidate.source }, 'mapping threw a non-MappingError');
      return { ok: false, error: errorMessage(err) };
    }
  }

  private async refused(action: AuditAction, subject: string, actor: Actor, error: AppError): Promise<void> {
    await writeAudit(this.deps.database, { action, subject, actor, details: { outcome: 'refused', code: error.code, reason: error.message } });
  }

  private log(actor: Actor, action: AuditAction, subject: string | null, details: Record<string, unknown>): void {
    this.deps.logger.info({ admin: { action, subject, via: actor.via, ip: actor.ip }, ...details }, `admin ${action}`);
  }
}

/** An action the admin asked for and we declined, with why in a form the page can act on. */
export class ActionRefused extends AppError {
  constructor(
    code: 'conflict' | 'mapping_failed',
    message: string,
    readonly reason: 'mapping' | 'busy' | 'synced',
  ) {
    super(code, message);
    this.name = 'ActionRefused';
  }
}

function notFound(id: number): AppError {
  return new AppError('not_found', `no sync with id ${id}`);
}
