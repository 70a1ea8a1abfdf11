import type { Queryable } from '../db/client';
import type { JsonValue } from '../core/json';
import type { Logger } from '../log';
import type { Actor } from './auth';
import type { AuditEntry } from './schemas';

/** The audit trail's action names. */
export type AuditAction =
  | 'sync.replay'
  | 'sync.discard'
  /** A read of a call's raw payloads (API, page or CLI): they carry phone numbers and other personal data. */
  | 'sync.view'
  | 'event.view'
  | 'syncs.replay'
  | 'syncs.replay.dry_run'
  | 'session.login'
  | 'session.login_failed'
  | 'session.logout'
  /** A request to the API without the right bearer token (rate-limited per address, see limiter.ts). */
  | 'api.auth_failed';

export interface AuditRecord {
  action: AuditAction;
  /** What the action was about: `call_sync:<id>`, or null for bulk and session actions. */
  subject: string | null;
  actor: Actor;
  details: Record<string, JsonValue>;
}

/** Writes one audit row and answers its id; run it inside the action's transaction where there is one, so both commit together. */
export async function writeAudit(db: Queryable, record: AuditRecord): Promise<number> {
  const details = { ...record.actor.context, ...record.details };
  const rows = await db.query<{ id: number }>(
    `INSERT INTO admin_audit (action, subject, ip, user_agent, via, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING id`,
    [record.action, record.subject, record.actor.ip, record.actor.userAgent, record.actor.via, JSON.stringify(details)],
  );
  const id = rows[0]?.id;
  if (id === undefined) throw new Error('admin_audit: INSERT returned no id');
  return id;
}

/**
 * Rewrites the details of an audit row; answers false when there is no such
 * row (the transaction that wrote it rolled back). Only a bulk replay uses
 * it: its one row is kept current by every batch's transaction, so the
 * trail says exactly what was committed even if the process dies mid-way.
 */
export async function updateAuditDetails(db: Queryable, id: number, actor: Actor, details: Record<string, JsonValue>): Promise<boolean> {
  const rows = await db.query<{ id: number }>(`UPDATE admin_audit SET details = $2::jsonb WHERE id = $1 RETURNING id`, [
    id,
    JSON.stringify({ ...actor.context, ...details }),
  ]);
  return rows.length > 0;
}

export async function recentAudit(db: Queryable, limit: number): Promise<AuditEntry[]> {
  const rows = await db.query<{
    id: number;
    at: Date;
    action: string;
    subject: string | null;
    ip: string | null;
    user_agent: string | null;
    via: string;
    details: unknown;
  }>(`SELECT id, at, action, subject, ip, user_agent, via, details FROM admin_audit ORDER BY id DESC LIMIT $1`, [limit]);
  return rows.map((r) => ({
    id: r.id,
    at: r.at.toISOString(),
    action: r.action,
    subject: r.subject,
    ip: r.ip,
    userAgent: r.user_agent,
    via: r.via,
    details: r.details,
  }));
}

/** The request's logger (with its reqId) when the action came through HTTP, else the given one (the admin's). */
export function actorLogger(fallback: Logger, actor: Actor): Logger {
  return actor.log ? actor.log.child({ component: 'admin' }) : fallback;
}

/** The log line that goes with an audited action. */
export function logAction(fallback: Logger, actor: Actor, action: AuditAction, subject: string | null, details: Record<string, unknown>): void {
  actorLogger(fallback, actor).info({ admin: { action, subject, via: actor.via, ip: actor.ip }, ...details }, `admin ${action}`);
}
