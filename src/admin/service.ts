import type { CrmTargetName } from '../config';
import type { Database } from '../db/client';
import { AppError, errorMessage } from '../core/errors';
import type { Logger } from '../log';
import { type MappingSet } from '../mapping/types';
import { MappingError } from '../core/errors';
import { type CrmKind } from '../core/crm-record';
import { type JsonValue } from '../core/json';
import { type StoredEvent } from '../core/event';
import {
  BulkReplayError,
  discardCall,
  loadReplayCandidate,
  matchReplay,
  replayCall,
  replayMatching,
  type EventTypeRef,
  type ReplayCandidate,
  type ReplayFilter,
} from '../outbox/replay';
import { recentAudit, updateAuditDetails, writeAudit, type AuditAction } from './audit';
import type { Actor, Session } from './auth';
import { FailureLimiter, limiterKey } from './limiter';
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
import { endSession, sessionIsLive, startSession } from './sessions';
import { listSyncs, loadEvent, loadSummary, loadSync } from './store';
import { readTimeBound } from './time';

export interface AdminServiceDeps {
  database: Database;
  logger: Logger;
  /** The mappings a replay folds with and reclassifies ignored events by (the CLI loads them from MAPPINGS_DIR). */
  mappings?: { current(): MappingSet } | undefined;
  /**
   * The CRMs the configured target writes to: a single replay also builds
   * their records, so a CRM-side mapping error is caught before queueing.
   */
  crmKinds?: readonly CrmKind[] | undefined;
  now?: () => Date;
}

/** The CRM records CRM_TARGET needs, for a process without a target of its own (web role, CLI). */
export function crmKindsOf(target: CrmTargetName): readonly CrmKind[] {
  switch (target) {
    case 'salesforce':
      return ['salesforce'];
    case 'hubspot':
      return ['hubspot'];
    case 'dry-run':
      return ['salesforce', 'hubspot'];
  }
}

/** Failed page logins an address may make per window before it must wait for the window to end. */
export const LOGIN_MAX_FAILURES = 5;
/** Failed API bearer attempts audited per address and window (the rest only answer 401). */
export const BEARER_AUDITED_FAILURES = 5;
export const FAILURE_WINDOW_MS = 15 * 60_000;
/** Failed-auth audit rows per minute from all addresses together: a spray of addresses cannot flood the table either. */
export const FAILURE_AUDIT_PER_MINUTE = 100;

type Fold = { ok: true; activity: JsonValue } | { ok: false; error: string };

/**
 * What the admin can do, shared by the API, the page and the CLI so all
 * three behave (and audit) the same. Failures are AppErrors with the code
 * the API answers with. Log lines go to the actor's logger (the request's,
 * with its reqId) when it has one.
 */
export class AdminService {
  private readonly now: () => Date;
  private readonly loginFailures: FailureLimiter;
  private readonly bearerFailures: FailureLimiter;
  private readonly failureAuditBudget: FailureLimiter;

  constructor(private readonly deps: AdminServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.loginFailures = new FailureLimiter({ maxFailures: LOGIN_MAX_FAILURES, windowMs: FAILURE_WINDOW_MS }, this.now);
    this.bearerFailures = new FailureLimiter({ maxFailures: BEARER_AUDITED_FAILURES, windowMs: FAILURE_WINDOW_MS }, this.now);
    this.failureAuditBudget = new FailureLimiter({ maxFailures: FAILURE_AUDIT_PER_MINUTE, windowMs: 60_000, maxKeys: 1 }, this.now);
  }

  async listSyncs(query: ListQuery): Promise<SyncList> {
    const window = this.resolveWindow(query.since, query.until);
    return listSyncs(
      this.deps.database,
      { status: query.status, source: query.source, since: window.since, until: window.until, q: query.q },
      { cursor: query.cursor, limit: query.limit },
    );
  }

  /** One call in full: its raw payloads are personal data, so the read is audited. */
  async getSync(id: number, actor: Actor): Promise<SyncDetail> {
    const record = await loadSync(this.deps.database, id);
    if (!record) throw notFound(id);
    const candidate = await loadReplayCandidate(this.deps.database, id);
    const preview: Preview = candidate ? this.asPreview((await this.foldNow(candidate, actor)).fold) : { ok: false, error: 'the call is gone' };
    await writeAudit(this.deps.database, { action: 'sync.view', subject: `call_sync:${id}`, actor, details: {} });
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

  /** One raw event (audited like getSync). */
  async getEvent(id: number, actor: Actor) {
    const event = await loadEvent(this.deps.database, id);
    if (!event) throw new AppError('not_found', `no event with id ${id}`);
    await writeAudit(this.deps.database, {
      action: 'event.view',
      subject: `webhook_event:${id}`,
      actor,
      details: event.syncId === null ? {} : { syncId: event.syncId },
    });
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
   * (mapping_failed): replaying it would only fail again. Ignored events
   * whose type the current mappings sync are folded in and made pending.
   */
  async replayOne(id: number, actor: Actor): Promise<ReplayOneResult> {
    const { database } = this.deps;
    const subject = `call_sync:${id}`;
    const candidate = await loadReplayCandidate(database, id);
    if (!candidate) throw notFound(id);
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
    if (outcome.outcome === 'missing') throw notFound(id);
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
        throw notFound(id);
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

  // ---- page sessions and failed authentication ----

  /** A login: the session row (what makes the cookie live) and its audit row commit together. */
  async login(session: Session, actor: Actor): Promise<void> {
    this.loginFailures.reset(limiterKey(actor.ip));
    await this.deps.database.transaction(async (tx) => {
      await startSession(tx, session, this.now());
      await writeAudit(tx, { action: 'session.login', subject: null, actor, details: {} });
    });
    this.log(actor, 'session.login', null, {});
  }

  /** Logout ends the session server-side: the cookie, even a copy of it, is refused from now on. */
  async logout(session: Session, actor: Actor): Promise<void> {
    await this.deps.database.transaction(async (tx) => {
      await endSession(tx, session);
      await writeAudit(tx, { action: 'session.logout', subject: null, actor, details: {} });
    });
    this.log(actor, 'session.logout', null, {});
  }

  /** Whether a session whose cookie verified is still live (not logged out). */
  sessionIsLive(session: Session): Promise<boolean> {
    return sessionIsLive(this.deps.database, session);
  }

  /** Seconds the actor's address must wait before the next login attempt (0: may try now). */
  loginRetryAfterSeconds(actor: Actor): number {
    return this.loginFailures.retryAfterSeconds(limiterKey(actor.ip));
  }

  /**
   * A failed login: counted per address, audited (each address can add at
   * most LOGIN_MAX_FAILURES rows per window, since it is blocked after
   * that). Answers how long the address is now blocked (0: not blocked).
   */
  async loginFailed(actor: Actor): Promise<number> {
    const key = limiterKey(actor.ip);
    const failures = this.loginFailures.fail(key);
    const blockedFor = this.loginFailures.retryAfterSeconds(key);
    await this.auditFailure(actor, 'session.login_failed', { failures, ...(blockedFor > 0 ? { blockedForSeconds: blockedFor } : {}) });
    return blockedFor;
  }

  /** A request to the API without the right token: the first few per address and window are audited. */
  async bearerFailed(actor: Actor, details: { reason: string; method: string; path: string }): Promise<void> {
    const failures = this.bearerFailures.fail(limiterKey(actor.ip));
    if (failures > BEARER_AUDITED_FAILURES) return;
    await this.auditFailure(actor, 'api.auth_failed', {
      ...details,
      failures,
      ...(failures === BEARER_AUDITED_FAILURES ? { note: `further failures from this address are not audited for ${FAILURE_WINDOW_MS / 60_000} minutes` } : {}),
    });
  }

  private async auditFailure(actor: Actor, action: 'session.login_failed' | 'api.auth_failed', details: Record<string, JsonValue>): Promise<void> {
    if (this.failureAuditBudget.fail('*') > FAILURE_AUDIT_PER_MINUTE) {
      // Many addresses at once: keep the table bounded; the log still shows it happening.
      this.logger(actor).warn({ admin: { action, via: actor.via, ip: actor.ip } }, `admin ${action} not audited: more than ${FAILURE_AUDIT_PER_MINUTE} failed attempts this minute`);
      return;
    }
    await writeAudit(this.deps.database, { action, subject: null, actor, details });
    this.log(actor, action, null, details);
  }

  /** since/until to instants ("2h" is resolved against now, once, so every batch of a replay sees the same window). */
  resolveWindow(since: string | undefined, until: string | undefined): { since?: Date; until?: Date } {
    const now = this.now();
    const parse = (field: string, value: string | undefined): Date | undefined => {
      if (value === undefined) return undefined;
      const bound = readTimeBound(value, now);
      if (!bound.ok) throw new AppError('validation_failed', `${field}: ${bound.problem}`);
      return bound.at;
    };
    const from = parse('since', since);
    const to = parse('until', until);
    if (from && to && from >= to) {
      throw new AppError('validation_failed', `until: must be later than since (${from.toISOString()} is not before ${to.toISOString()})`);
    }
    return { ...(from ? { since: from } : {}), ...(to ? { until: to } : {}) };
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

  /** The request's logger (with its reqId) when the action came through HTTP, else the service's. */
  private logger(actor: Actor): Logger {
    return actor.log ? actor.log.child({ component: 'admin' }) : this.deps.logger;
  }

  private log(actor: Actor, action: AuditAction, subject: string | null, details: Record<string, unknown>): void {
    this.logger(actor).info({ admin: { action, subject, via: actor.via, ip: actor.ip }, ...details }, `admin ${action}`);
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

function notFound(id: number): AppError {
  return new AppError('not_found', `no sync with id ${id}`);
}
