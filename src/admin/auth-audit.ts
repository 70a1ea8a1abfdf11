import type { Database } from '../db/client';
import type { JsonValue } from '../core/json';
import type { Logger } from '../log';
import { actorLogger, logAction, writeAudit } from './audit';
import type { Actor, Session } from './auth';
import { FailureLimiter, limiterKey } from './limiter';
import { endSession, sessionIsLive, startSession } from './sessions';

/** Failed page logins an address may make per window before it must wait for the window to end. */
export const LOGIN_MAX_FAILURES = 5;
/** Failed API bearer attempts audited per address and window (the rest only answer 401). */
export const BEARER_AUDITED_FAILURES = 5;
export const FAILURE_WINDOW_MS = 15 * 60_000;
/** Failed-auth audit rows per minute from all addresses together: a spray of addresses cannot flood the table either. */
export const FAILURE_AUDIT_PER_MINUTE = 100;

/**
 * Page sessions and failed authentication, audited: logins and logouts
 * (the session row and its audit row commit together), and failed logins
 * and bearer attempts, counted per address so neither guessing nor a flood
 * of audit rows scales with the attacker's volume.
 */
export class AuthAudit {
  private readonly loginFailures: FailureLimiter;
  private readonly bearerFailures: FailureLimiter;
  private readonly failureAuditBudget: FailureLimiter;

  constructor(
    private readonly deps: { database: Database; logger: Logger },
    private readonly now: () => Date,
  ) {
    this.loginFailures = new FailureLimiter({ maxFailures: LOGIN_MAX_FAILURES, windowMs: FAILURE_WINDOW_MS }, now);
    this.bearerFailures = new FailureLimiter({ maxFailures: BEARER_AUDITED_FAILURES, windowMs: FAILURE_WINDOW_MS }, now);
    this.failureAuditBudget = new FailureLimiter({ maxFailures: FAILURE_AUDIT_PER_MINUTE, windowMs: 60_000, maxKeys: 1 }, now);
  }

  /** A login: the session row (what makes the cookie live) and its audit row commit together. */
  async login(session: Session, actor: Actor): Promise<void> {
    this.loginFailures.reset(limiterKey(actor.ip));
    await this.deps.database.transaction(async (tx) => {
      await startSession(tx, session, this.now());
      await writeAudit(tx, { action: 'session.login', subject: null, actor, details: {} });
    });
    logAction(this.deps.logger, actor, 'session.login', null, {});
  }

  /** Logout ends the session server-side: the cookie, even a copy of it, is refused from now on. */
  async logout(session: Session, actor: Actor): Promise<void> {
    await this.deps.database.transaction(async (tx) => {
      await endSession(tx, session);
      await writeAudit(tx, { action: 'session.logout', subject: null, actor, details: {} });
    });
    logAction(this.deps.logger, actor, 'session.logout', null, {});
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
      actorLogger(this.deps.logger, actor).warn(
        { admin: { action, via: actor.via, ip: actor.ip } },
        `admin ${action} not audited: more than ${FAILURE_AUDIT_PER_MINUTE} failed attempts this minute`,
      );
      return;
    }
    await writeAudit(this.deps.database, { action, subject: null, actor, details });
    logAction(this.deps.logger, actor, action, null, details);
  }
}
