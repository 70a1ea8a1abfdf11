import type { Database } from '../db/client';
import { AppError } from '../core/errors';
import type { Logger } from '../log';
import type { MappingSet } from '../mapping/mapping-set';
import type { CrmKind } from '../core/crm-record';
import { recentAudit, writeAudit } from './audit';
import type { Actor, Session } from './auth';
import { AuthAudit } from './auth-audit';
import type {
  AuditEntry,
  BulkReplayInput,
  BulkReplayResult,
  DiscardResult,
  ListQuery,
  Preview,
  ReplayOneResult,
  Summary,
  SyncDetail,
  SyncList,
} from './schemas';
import { listSyncs, loadEvent, loadSummary, loadSync } from './read-side';
import { SyncActions, syncNotFound } from './sync-actions';
import { readWindow } from './time-bounds';

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

/**
 * What the admin can do, shared by the API, the page and the CLI so all
 * three behave (and audit) the same. Failures are AppErrors with the code
 * the API answers with. Log lines go to the actor's logger (the request's,
 * with its reqId) when it has one.
 *
 * The reads are here; the actions on calls are in sync-actions.ts, sessions
 * and failed authentication in auth-audit.ts.
 */
export class AdminService {
  private readonly now: () => Date;
  private readonly actions: SyncActions;
  private readonly auth: AuthAudit;

  constructor(private readonly deps: AdminServiceDeps) {
    this.now = deps.now ?? (() => new Date());
    this.actions = new SyncActions({ ...deps, now: this.now });
    this.auth = new AuthAudit(deps, this.now);
  }

  async listSyncs(query: ListQuery): Promise<SyncList> {
    const window = readWindow(query.since, query.until, this.now());
    return listSyncs(
      this.deps.database,
      { status: query.status, source: query.source, since: window.since, until: window.until, q: query.q },
      { cursor: query.cursor, limit: query.limit },
    );
  }

  /** One call in full: its raw payloads are personal data, so the read is audited. */
  async getSync(id: number, actor: Actor): Promise<SyncDetail> {
    const record = await loadSync(this.deps.database, id);
    if (!record) throw syncNotFound(id);
    const preview: Preview = (await this.actions.preview(id, actor)) ?? { ok: false, error: 'the call is gone' };
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

  // ---- actions on calls (sync-actions.ts) ----

  replayOne(id: number, actor: Actor): Promise<ReplayOneResult> {
    return this.actions.replayOne(id, actor);
  }

  discardOne(id: number, actor: Actor): Promise<DiscardResult> {
    return this.actions.discardOne(id, actor);
  }

  replayBulk(input: BulkReplayInput, actor: Actor): Promise<BulkReplayResult> {
    return this.actions.replayBulk(input, actor);
  }

  // ---- page sessions and failed authentication (auth-audit.ts) ----

  login(session: Session, actor: Actor): Promise<void> {
    return this.auth.login(session, actor);
  }

  logout(session: Session, actor: Actor): Promise<void> {
    return this.auth.logout(session, actor);
  }

  sessionIsLive(session: Session): Promise<boolean> {
    return this.auth.sessionIsLive(session);
  }

  loginRetryAfterSeconds(actor: Actor): number {
    return this.auth.loginRetryAfterSeconds(actor);
  }

  loginFailed(actor: Actor): Promise<number> {
    return this.auth.loginFailed(actor);
  }

  bearerFailed(actor: Actor, details: { reason: string; method: string; path: string }): Promise<void> {
    return this.auth.bearerFailed(actor, details);
  }
}
